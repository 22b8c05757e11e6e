// Edit.cs: modify_tags (set, add or delete top-level elements; values checked against the VR),
// and the helper every editing op uses to write one element.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.RegularExpressions;

namespace DicomHub
{
    public static class Edit
    {
        static readonly HashSet<string> TextVRs = new HashSet<string> { "AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT" };
        static readonly Dictionary<string, int> NumberSizes = new Dictionary<string, int> { { "US", 2 }, { "SS", 2 }, { "UL", 4 }, { "SL", 4 }, { "FL", 4 }, { "FD", 8 } };
        static readonly Dictionary<string, Regex> Formats = new Dictionary<string, Regex>
        {
            { "UI", new Regex(@"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$") },
            { "DA", new Regex(@"^[0-9]{8}$") },
            { "TM", new Regex(@"^[0-9]{2}([0-9]{2}([0-9]{2}(\.[0-9]{1,6})?)?)?$") },
            { "IS", new Regex(@"^ *[+-]?[0-9]+ *$") },
            { "DS", new Regex(@"^ *[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)? *$") },
            { "CS", new Regex(@"^[A-Z0-9_ ]{0,16}$") },
            { "AS", new Regex(@"^[0-9]{3}[DWMY]$") },
        };
        static readonly Dictionary<string, int> MaxLengths = new Dictionary<string, int>
        {
            { "AE", 16 }, { "CS", 16 }, { "DS", 16 }, { "IS", 12 }, { "LO", 64 }, { "SH", 16 }, { "UI", 64 }, { "PN", 324 }, { "LT", 10240 }, { "ST", 1024 },
        };

        /// Write one element with a text value (padded to even length: UI with NUL, others with a space).
        public static void SetText(gdcm.DataSet ds, gdcm.Tag tag, string vr, string text)
        {
            byte[] bytes = Encoding.UTF8.GetBytes(text ?? "");
            if (bytes.Length % 2 == 1) bytes = bytes.Concat(new[] { vr == "UI" ? (byte)0 : (byte)' ' }).ToArray();
            SetBytes(ds, tag, vr, bytes);
        }

        public static void SetBytes(gdcm.DataSet ds, gdcm.Tag tag, string vr, byte[] bytes)
        {
            var de = new gdcm.DataElement(tag);
            de.SetVR(new gdcm.VR(gdcm.VR.GetVRType(vr)));
            de.SetByteValue(bytes, new gdcm.VL((uint)bytes.Length));
            ds.Replace(de);
        }

        public static Result ModifyTags(Job job)
        {
            string output = job.RequireOutput();
            gdcm.Reader reader = Files.Read(job.RequireInput());
            gdcm.File file = reader.GetFile();
            gdcm.DataSet ds = file.GetDataSet();
            var vrs = new Dictionary<uint, string>();
            foreach (var pair in Entries(job, "vr"))
                vrs[Tag(pair.Key).GetElementTag()] = pair.Value as string;
            var changed = new List<object>();
            var deleted = new List<object>();
            var absent = new List<object>();
            foreach (var pair in Entries(job, "set"))
            {
                gdcm.Tag tag = Tag(pair.Key);
                string vr;
                if (!vrs.TryGetValue(tag.GetElementTag(), out vr))
                    vr = ds.FindDataElement(tag) ? Elements.VrOf(ds.GetDataElement(tag)) : Elements.VrOf(new gdcm.DataElement(tag));
                if (tag.IsPrivate() && !tag.IsPrivateCreator() && vr == "UN" && !vrs.ContainsKey(tag.GetElementTag()))
                    throw new HubException("invalid_request", "the dictionary has no VR for private tag " + pair.Key, "give it in options.vr, e.g. {\"" + pair.Key + "\": \"LO\"}");
                SetBytes(ds, tag, vr, Encode(pair.Key, vr, pair.Value));
                changed.Add(Elements.TagText(tag));
            }
            object deleteList;
            if (job.Options.TryGetValue("delete", out deleteList) && deleteList != null)
            {
                foreach (object item in (List<object>)deleteList)
                {
                    gdcm.Tag tag = Tag(item as string);
                    if (ds.FindDataElement(tag)) { ds.Remove(tag); deleted.Add(Elements.TagText(tag)); }
                    else absent.Add(Elements.TagText(tag));
                }
            }
            Files.WriteDicom(file, output, job.Overwrite);
            var result = new Result();
            result.Metadata["set"] = changed;
            result.Metadata["deleted"] = deleted;
            result.Metadata["not_present"] = absent;
            result.OutputFiles.Add(Path.GetFullPath(output));
            return result;
        }

        static IEnumerable<KeyValuePair<string, object>> Entries(Job job, string option)
        {
            object value;
            if (!job.Options.TryGetValue(option, out value) || value == null) return Enumerable.Empty<KeyValuePair<string, object>>();
            var dict = value as Dictionary<string, object>;
            if (dict == null) throw new HubException("invalid_request", "option '" + option + "' must be an object");
            return dict;
        }

        static gdcm.Tag Tag(string text)
        {
            gdcm.Tag tag = text == null ? null : Elements.ParseTag(text);
            if (tag == null) throw new HubException("invalid_request", "unknown tag '" + text + "'", "use a DICOM keyword (PatientName) or (gggg,eeee)");
            if (tag.GetGroup() == 0x0002) throw new HubException("invalid_request", "group 0002 (file meta) cannot be edited: " + text, "transcode changes the transfer syntax");
            return tag;
        }

        /// A request value as the element's bytes, checked against the VR.
        static byte[] Encode(string key, string vr, object value)
        {
            var values = value == null ? new List<object>() : value is List<object> ? (List<object>)value : new List<object> { value };
            if (TextVRs.Contains(vr))
            {
                var texts = new List<string>();
                foreach (object v in values)
                {
                    if (v is List<object> || v is Dictionary<string, object>) throw new HubException("invalid_request", key + ": nested values are not allowed for VR " + vr);
                    string text = Convert.ToString(v, CultureInfo.InvariantCulture);
                    if (v is bool) throw new HubException("invalid_request", key + ": true/false is not a " + vr + " value");
                    Check(key, vr, text);
                    texts.Add(text);
                }
                string joined = string.Join("\\", texts);
                byte[] bytes = Encoding.UTF8.GetBytes(joined);
                return bytes.Length % 2 == 1 ? bytes.Concat(new[] { vr == "UI" ? (byte)0 : (byte)' ' }).ToArray() : bytes;
            }
            int size;
            if (NumberSizes.TryGetValue(vr, out size))
            {
                var stream = new MemoryStream();
                foreach (object v in values)
                {
                    double number;
                    if (v is long || v is double) number = Convert.ToDouble(v);
                    else if (!(v is string) || !double.TryParse((string)v, NumberStyles.Float, CultureInfo.InvariantCulture, out number))
                        throw new HubException("invalid_request", key + ": " + Json.Write(v) + " is not a number (VR " + vr + ")");
                    byte[] bytes = NumberBytes(key, vr, number);
                    stream.Write(bytes, 0, bytes.Length);
                }
                return stream.ToArray();
            }
            throw new HubException("invalid_request", key + ": csharp cannot set elements of VR " + vr, "modify_tags sets text and number elements; use backend python for others");
        }

        static byte[] NumberBytes(string key, string vr, double number)
        {
            bool integer = vr != "FL" && vr != "FD";
            if (integer && number != Math.Floor(number)) throw new HubException("invalid_request", key + ": " + number + " is not an integer (VR " + vr + ")");
            switch (vr)
            {
                case "US": Range(key, vr, number, 0, ushort.MaxValue); return BitConverter.GetBytes((ushort)number);
                case "SS": Range(key, vr, number, short.MinValue, short.MaxValue); return BitConverter.GetBytes((short)number);
                case "UL": Range(key, vr, number, 0, uint.MaxValue); return BitConverter.GetBytes((uint)number);
                case "SL": Range(key, vr, number, int.MinValue, int.MaxValue); return BitConverter.GetBytes((int)number);
                case "FL": return BitConverter.GetBytes((float)number);
                default: return BitConverter.GetBytes(number);
            }
        }

        static void Range(string key, string vr, double number, double low, double high)
        {
            if (number < low || number > high) throw new HubException("invalid_request", key + ": " + number + " is out of range for VR " + vr);
        }

        static void Check(string key, string vr, string text)
        {
            Regex format;
            if (text.Length > 0 && Formats.TryGetValue(vr, out format) && !format.IsMatch(text))
                throw new HubException("invalid_request", key + ": '" + text + "' is not a valid " + vr + " value", "see PS3.5 table 6.2-1 for the " + vr + " format");
            int max;
            if (MaxLengths.TryGetValue(vr, out max) && text.Length > max)
                throw new HubException("invalid_request", key + ": '" + text + "' is longer than " + max + " characters (VR " + vr + ")");
            if (text.Contains("\\") && (vr == "LT" || vr == "ST" || vr == "UT"))
                throw new HubException("invalid_request", key + ": a backslash is not allowed in VR " + vr);
        }
    }
}
