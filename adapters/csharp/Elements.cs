// Elements.cs: reading element values the way every dicom-hub backend reports them, and the
// ops built on that: info (summary levels from contract/info_fields.json), dump, to_json.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Text;

namespace DicomHub
{
    public static class Elements
    {
        static readonly HashSet<string> BinaryNumberVRs = new HashSet<string> { "US", "SS", "UL", "SL", "FL", "FD", "UV", "SV", "AT" };
        static readonly HashSet<string> BulkVRs = new HashSet<string> { "OB", "OW", "OF", "OD", "OL", "OV", "UN" };
        static readonly HashSet<string> SingleValueTextVRs = new HashSet<string> { "LT", "ST", "UT", "UR" };
        static gdcm.Dicts dicts;
        // PixelRepresentation of the file being read: decides US or SS for the dictionary's "US or SS".
        static bool signedPixels;

        static gdcm.Dicts Dicts { get { return dicts ?? (dicts = gdcm.Global.GetInstance().GetDicts()); } }

        // -- element basics ----------------------------------------------------------------------
        public static string TagText(gdcm.Tag tag) { return tag.GetGroup().ToString("X4") + tag.GetElement().ToString("X4"); }

        public static string Keyword(gdcm.Tag tag)
        {
            if (tag.IsPrivate()) return "";
            return Dicts.GetDictEntry(tag).GetKeyword() ?? "";
        }

        /// The tag of a keyword (e.g. "PatientName") or of "(gggg,eeee)" / "ggggeeee"; null if unknown.
        public static gdcm.Tag ParseTag(string text)
        {
            string hex = text.Trim().Trim('(', ')').Replace(",", "");
            if (hex.Length == 8 && hex.All(Uri.IsHexDigit))
                return new gdcm.Tag(uint.Parse(hex, NumberStyles.HexNumber));
            var tag = new gdcm.Tag();
            Dicts.GetPublicDict().GetDictEntryByKeyword(text.Trim(), tag);
            if (tag.GetGroup() == 0xFFFF || (tag.GetGroup() == 0 && tag.GetElement() == 0)) return null;
            return Keyword(tag) == text.Trim() ? tag : null;
        }

        /// The VR as a two-letter string: the file's explicit VR, else the dictionary's.
        public static string VrOf(gdcm.DataElement de)
        {
            gdcm.VR.VRType type = de.GetVR();
            // Implicit VR files carry no VR; an explicit UN of a public tag is read with the
            // dictionary's VR (as pydicom does with replace_un_with_known_vr).
            if (type == gdcm.VR.VRType.INVALID || (type == gdcm.VR.VRType.UN && !de.GetTag().IsPrivate()))
            {
                gdcm.VR.VRType known = DictVr(de.GetTag());
                if (known != gdcm.VR.VRType.INVALID || type == gdcm.VR.VRType.INVALID) type = known;
            }
            return VrText(type);
        }

        public static gdcm.VR.VRType DictVr(gdcm.Tag tag)
        {
            if (tag.IsPrivate() && !tag.IsPrivateCreator()) return gdcm.VR.VRType.UN;
            if (tag.IsPrivateCreator()) return gdcm.VR.VRType.LO;
            return Dicts.GetDictEntry(tag).GetVR();
        }

        static string VrText(gdcm.VR.VRType type)
        {
            switch (type)
            {
                case gdcm.VR.VRType.OB_OW: case gdcm.VR.VRType.US_OW: case gdcm.VR.VRType.US_SS_OW: return "OW";
                case gdcm.VR.VRType.US_SS: return signedPixels ? "SS" : "US";
                case gdcm.VR.VRType.INVALID: return "UN";
                default: return gdcm.VR.GetVRString(type);
            }
        }

        public static byte[] Raw(gdcm.DataElement de)
        {
            gdcm.ByteValue bv = de.GetByteValue();
            if (bv == null) return null;
            uint length = bv.GetLength();
            var buffer = new byte[length];
            if (length > 0) bv.GetBuffer(buffer, length);
            return buffer;
        }

        public static IEnumerable<gdcm.DataElement> Iterate(gdcm.DataSet ds)
        {
            var it = new gdcm.CSharpDataSet(ds);
            for (it.Start(); !it.IsAtEnd(); it.Next()) yield return it.GetCurrent();
        }

        /// The items of a sequence element (GDCM numbers items from 1).
        public static List<gdcm.DataSet> Items(gdcm.DataElement de)
        {
            var items = new List<gdcm.DataSet>();
            gdcm.SmartPtrSQ sq = de.GetValueAsSQ();
            if (sq == null || sq.GetPointer() == null) return items;
            Files.KeepAlive.Add(sq);
            uint count = sq.GetNumberOfItems();
            for (uint i = 1; i <= count; i++) items.Add(sq.GetItem(i).GetNestedDataSet());
            return items;
        }

        /// How text values are decoded: UTF-8 for ISO_IR 192, else Latin-1.
        public class Reading
        {
            public Encoding Text = Encoding.GetEncoding(28591);

            public static Reading For(gdcm.File file)
            {
                var reading = new Reading();
                gdcm.DataSet ds = file.GetDataSet();
                var pixelRepresentation = new gdcm.Tag(0x0028, 0x0103);
                byte[] pr = ds.FindDataElement(pixelRepresentation) ? Raw(ds.GetDataElement(pixelRepresentation)) : null;
                signedPixels = pr != null && pr.Length >= 2 && BitConverter.ToUInt16(pr, 0) == 1;
                var charset = new gdcm.Tag(0x0008, 0x0005);
                if (ds.FindDataElement(charset))
                {
                    byte[] raw = Raw(ds.GetDataElement(charset));
                    if (raw != null && Encoding.ASCII.GetString(raw).Contains("ISO_IR 192")) reading.Text = new UTF8Encoding(false);
                }
                return reading;
            }
        }

        public static string TransferSyntaxUid(gdcm.File file)
        {
            var tag = new gdcm.Tag(0x0002, 0x0010);
            gdcm.FileMetaInformation header = file.GetHeader();
            if (!header.FindDataElement(tag)) return null;
            byte[] raw = Raw(header.GetDataElement(tag));
            return raw == null ? null : Trim(Encoding.ASCII.GetString(raw));
        }

        static string Trim(string s) { return s.Trim(' ', '\0', '\t', '\r', '\n'); }

        static List<string> Strings(byte[] raw, string vr, Reading reading)
        {
            string text = reading.Text.GetString(raw).TrimEnd(' ', '\0');
            if (SingleValueTextVRs.Contains(vr)) return new List<string> { Trim(text) };
            return text.Split('\\').Select(Trim).ToList();
        }

        /// A number as the DICOM JSON Model carries it: JSON numbers have no NaN or infinities, so
        /// those are the strings "NaN", "inf" and "-inf" (PS3.18 F.2.3.1; as pydicom and dicom-rs).
        static object JsonFloat(double value)
        {
            if (double.IsNaN(value)) return "NaN";
            if (double.IsPositiveInfinity(value)) return "inf";
            if (double.IsNegativeInfinity(value)) return "-inf";
            return value;
        }

        /// Binary numbers (GDCM has already swapped big endian files to the machine's order).
        static List<object> Numbers(byte[] raw, string vr)
        {
            int size = vr == "US" || vr == "SS" ? 2 : vr == "FD" || vr == "SV" || vr == "UV" ? 8 : 4;
            var values = new List<object>();
            for (int offset = 0; offset + size <= raw.Length; offset += size)
            {
                var chunk = new byte[size];
                Array.Copy(raw, offset, chunk, 0, size);
                switch (vr)
                {
                    case "US": values.Add((long)BitConverter.ToUInt16(chunk, 0)); break;
                    case "SS": values.Add((long)BitConverter.ToInt16(chunk, 0)); break;
                    case "UL": values.Add((long)BitConverter.ToUInt32(chunk, 0)); break;
                    case "SL": values.Add((long)BitConverter.ToInt32(chunk, 0)); break;
                    case "FL": values.Add(JsonFloat(BitConverter.ToSingle(chunk, 0))); break;
                    case "FD": values.Add(JsonFloat(BitConverter.ToDouble(chunk, 0))); break;
                    case "SV": values.Add(BitConverter.ToInt64(chunk, 0)); break;
                    case "UV": values.Add((double)BitConverter.ToUInt64(chunk, 0)); break;
                    case "AT":
                        uint group = BitConverter.ToUInt16(chunk, 0), element = BitConverter.ToUInt16(chunk, 2);
                        values.Add((long)((group << 16) | element));
                        break;
                }
            }
            return values;
        }

        /// A value as python_backend/_values.py reports it: stored strings without padding,
        /// binary numbers as numbers, several values as a list, empty as null.
        public static object Value(gdcm.DataElement de, string vr, Reading reading)
        {
            byte[] raw = Raw(de);
            if (raw == null || raw.Length == 0 || vr == "SQ" || BulkVRs.Contains(vr)) return null;
            if (BinaryNumberVRs.Contains(vr))
            {
                List<object> numbers = Numbers(raw, vr);
                if (numbers.Count == 0) return null;
                return numbers.Count == 1 ? numbers[0] : numbers;
            }
            List<string> texts = Strings(raw, vr, reading);
            if (texts.Count == 1) return texts[0].Length == 0 ? null : texts[0];
            return texts.Cast<object>().ToList();
        }

        // -- info ----------------------------------------------------------------------------------
        static Dictionary<string, object> infoFields;

        /// contract/info_fields.json, compiled into the program as a resource (one source of truth).
        static Dictionary<string, object> InfoFields()
        {
            if (infoFields != null) return infoFields;
            using (Stream stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("info_fields.json"))
            using (var reader = new StreamReader(stream, Encoding.UTF8))
                infoFields = (Dictionary<string, object>)Json.Parse(reader.ReadToEnd());
            return infoFields;
        }

        public static Result Info(Job job)
        {
            string path = job.RequireInput();
            gdcm.Reader reader = Files.Read(path);
            gdcm.File file = reader.GetFile();
            gdcm.DataSet ds = file.GetDataSet();
            Reading reading = Reading.For(file);
            var result = new Result();
            foreach (var level in InfoFields())
            {
                if (level.Key.StartsWith("$")) continue;
                var values = new Dictionary<string, object>();
                foreach (object keyword in (List<object>)level.Value)
                {
                    gdcm.Tag tag = ParseTag((string)keyword);
                    if (tag == null || !ds.FindDataElement(tag)) continue;
                    gdcm.DataElement de = ds.GetDataElement(tag);
                    object value = Value(de, VrOf(de), reading);
                    if (value == null || (value is string && ((string)value).Length == 0)) continue;
                    values[(string)keyword] = value;
                }
                result.Metadata[level.Key] = values;
            }
            string ts = TransferSyntaxUid(file);
            string sopClass = TextOf(ds, new gdcm.Tag(0x0008, 0x0016), reading);
            result.Metadata["file"] = new Dictionary<string, object>
            {
                { "path", path },
                { "size_bytes", new FileInfo(path).Length },
                { "transfer_syntax", ts },
                { "transfer_syntax_name", UidName(ts) },
                { "sop_class_name", UidName(sopClass) },
            };
            return result;
        }

        public static string TextOf(gdcm.DataSet ds, gdcm.Tag tag, Reading reading)
        {
            if (!ds.FindDataElement(tag)) return null;
            byte[] raw = Raw(ds.GetDataElement(tag));
            return raw == null ? null : Trim(reading.Text.GetString(raw));
        }

        public static string UidName(string uid)
        {
            if (string.IsNullOrEmpty(uid)) return null;
            var uids = new gdcm.UIDs();
            if (!uids.SetFromUID(uid)) return null;
            // GDCM appends the role ("...: Default Transfer Syntax for DICOM"); the name is the part before.
            string name = uids.GetName();
            int colon = name.IndexOf(": ", StringComparison.Ordinal);
            return colon > 0 ? name.Substring(0, colon) : name;
        }

        // -- dump ----------------------------------------------------------------------------------
        class DumpState
        {
            public int? MaxDepth;
            public int MaxLength;
            public bool WithPixels;
            public Reading Reading;
            public StringBuilder Text = new StringBuilder();
            public List<object> Elements = new List<object>();
        }

        public static Result Dump(Job job)
        {
            gdcm.Reader reader = Files.Read(job.RequireInput());
            gdcm.File file = reader.GetFile();
            var state = new DumpState
            {
                MaxDepth = job.Has("max_depth") ? (int?)(int)job.Number("max_depth") : null,
                MaxLength = (int)job.Number("max_value_length"),
                WithPixels = job.Bool("include_pixel_data"),
                Reading = Reading.For(file),
            };
            Walk(file.GetHeader(), 0, state);
            Walk(file.GetDataSet(), 0, state);
            var result = new Result();
            result.Metadata["elements"] = state.Elements;
            result.Metadata["element_count"] = (long)state.Elements.Count;
            string text = state.Text.ToString();
            if (job.Output == null)
            {
                result.Stdout = text;
                return result;
            }
            Files.WriteAtomic(job.Output, job.Overwrite, tmp => File.WriteAllText(tmp, text, new UTF8Encoding(false)));
            result.OutputFiles.Add(Path.GetFullPath(job.Output));
            return result;
        }

        static void Walk(gdcm.DataSet ds, int depth, DumpState state)
        {
            string indent = new string(' ', 2 * depth);
            foreach (gdcm.DataElement de in Iterate(ds))
            {
                gdcm.Tag tag = de.GetTag();
                if (tag.GetElementTag() == 0x7FE00010 && !state.WithPixels) continue;
                string vr = VrOf(de);
                string keyword = Keyword(tag);
                string shown = Shown(de, vr, state);
                string name = keyword.Length > 0 ? keyword : (tag.IsPrivate() ? "Private tag" : Dicts.GetDictEntry(tag).GetName());
                state.Text.AppendFormat("{0}({1:X4},{2:X4}) {3} {4}: {5}\n", indent, tag.GetGroup(), tag.GetElement(), vr, name, shown);
                state.Elements.Add(new Dictionary<string, object>
                {
                    { "tag", TagText(tag) }, { "vr", vr }, { "keyword", keyword }, { "depth", (long)depth }, { "value", shown },
                });
                if (vr == "SQ" && (state.MaxDepth == null || depth < state.MaxDepth))
                {
                    List<gdcm.DataSet> items = Items(de);
                    for (int i = 0; i < items.Count; i++)
                    {
                        state.Text.AppendFormat("{0}  > item {1}\n", indent, i);
                        Walk(items[i], depth + 1, state);
                    }
                }
            }
        }

        static string Shown(gdcm.DataElement de, string vr, DumpState state)
        {
            if (vr == "SQ") return "<sequence of " + Items(de).Count + " item(s)>";
            if (de.GetTag().GetElementTag() == 0x7FE00010 || BulkVRs.Contains(vr))
                return "<" + vr + " binary, " + BinaryLength(de) + " bytes>";
            object value = Value(de, vr, state.Reading);
            string text = value == null ? "" : value is List<object>
                ? (BinaryNumberVRs.Contains(vr) ? "[" + string.Join(", ", ((List<object>)value).Select(Plain)) + "]" : string.Join("\\", ((List<object>)value).Select(Plain)))
                : Plain(value);
            return text.Length <= state.MaxLength ? text : text.Substring(0, state.MaxLength - 3) + "...";
        }

        static string Plain(object value)
        {
            return Convert.ToString(value, CultureInfo.InvariantCulture);
        }

        static long BinaryLength(gdcm.DataElement de)
        {
            byte[] raw = Raw(de);
            if (raw != null) return raw.Length;
            byte[] encapsulated = EncapsulatedBytes(de);
            return encapsulated == null ? 0 : encapsulated.Length;
        }

        /// Encapsulated Pixel Data as stored: an empty offset table item, then each fragment as an item,
        /// then the sequence delimiter (GDCM's C# API does not expose the offset table's bytes).
        public static byte[] EncapsulatedBytes(gdcm.DataElement de)
        {
            gdcm.SequenceOfFragments frags = de.GetSequenceOfFragments();
            if (frags == null) return null;
            var stream = new MemoryStream();
            Action<uint, byte[]> item = (tag, body) =>
            {
                stream.Write(BitConverter.GetBytes((ushort)(tag >> 16)), 0, 2);
                stream.Write(BitConverter.GetBytes((ushort)(tag & 0xFFFF)), 0, 2);
                stream.Write(BitConverter.GetBytes((uint)body.Length), 0, 4);
                stream.Write(body, 0, body.Length);
            };
            item(0xFFFEE000, new byte[0]);
            uint count = frags.GetNumberOfFragments();
            for (uint i = 0; i < count; i++) item(0xFFFEE000, Raw(frags.GetFragment(i)) ?? new byte[0]);
            item(0xFFFEE0DD, new byte[0]);
            return stream.ToArray();
        }

        // -- to_json (DICOM JSON Model, PS3.18 Annex F) -----------------------------------------------
        const int BulkThreshold = 1024;

        public static Result ToJson(Job job)
        {
            gdcm.Reader reader = Files.Read(job.RequireInput());
            gdcm.File file = reader.GetFile();
            Reading reading = Reading.For(file);
            string bulk = job.Text("bulk_data");
            if (bulk != "inline" && bulk != "omit") throw new HubException("invalid_request", "option 'bulk_data' must be inline or omit");
            var omitted = new List<object>();
            var document = new Dictionary<string, object>();
            if (job.Bool("include_file_meta")) JsonModel(file.GetHeader(), reading, bulk == "omit", omitted, document);
            JsonModel(file.GetDataSet(), reading, bulk == "omit", omitted, document);
            var result = new Result();
            result.Metadata["element_count"] = (long)document.Count;
            result.Metadata["omitted"] = omitted;
            if (job.Output == null)
            {
                result.Metadata["dataset"] = document;
                return result;
            }
            int indent = job.Has("indent") ? (int)job.Number("indent") : -1;
            string text = Json.Write(document, indent);
            Files.WriteAtomic(job.Output, job.Overwrite, tmp => File.WriteAllText(tmp, text, new UTF8Encoding(false)));
            result.OutputFiles.Add(Path.GetFullPath(job.Output));
            return result;
        }

        static Dictionary<string, object> JsonModel(gdcm.DataSet ds, Reading reading, bool omitBulk, List<object> omitted, Dictionary<string, object> into)
        {
            foreach (gdcm.DataElement de in Iterate(ds))
            {
                string key = TagText(de.GetTag());
                string vr = VrOf(de);
                var element = new Dictionary<string, object> { { "vr", vr } };
                if (vr == "SQ")
                {
                    element["Value"] = Items(de).Select(item => (object)JsonModel(item, reading, omitBulk, omitted, new Dictionary<string, object>())).ToList();
                }
                else if (BulkVRs.Contains(vr) || de.GetTag().GetElementTag() == 0x7FE00010)
                {
                    byte[] raw = Raw(de) ?? EncapsulatedBytes(de);
                    if (raw != null && raw.Length > 0)
                    {
                        if (omitBulk && raw.Length >= BulkThreshold) { omitted.Add(key); continue; }
                        element["InlineBinary"] = Convert.ToBase64String(raw);
                    }
                }
                else
                {
                    object value = Value(de, vr, reading);
                    if (value != null) element["Value"] = JsonValues(value is List<object> ? (List<object>)value : new List<object> { value }, vr);
                }
                into[key] = element;
            }
            return into;
        }

        static List<object> JsonValues(List<object> values, string vr)
        {
            return values.Select(v =>
            {
                string s = v as string;
                if (s == null) return vr == "AT" ? ((long)v).ToString("X8") : v;
                if (s.Length == 0) return null;
                if (vr == "PN")
                {
                    string[] groups = s.Split('=');
                    string[] names = { "Alphabetic", "Ideographic", "Phonetic" };
                    var pn = new Dictionary<string, object>();
                    for (int i = 0; i < groups.Length && i < 3; i++) if (groups[i].Length > 0) pn[names[i]] = groups[i];
                    return pn;
                }
                if (vr == "IS") { long n; if (long.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out n)) return n; }
                if (vr == "DS" || vr == "IS") { double d; if (double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out d)) return JsonFloat(d); }
                return (object)s;
            }).ToList();
        }
    }
}
