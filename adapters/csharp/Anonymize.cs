// Anonymize.cs: de-identification after PS3.15 Annex E, Table E.1-1 (compiled in from
// contract/data/ps3.15-annex-e-2024b.tsv, the table the Python backend reads) and the IOD tables
// (Iods.cs), with the same rules (contract/dicom/deid/rules.py) and the same keyed HMAC-SHA-256
// pseudonyms, so one key gives the same UIDs and IDs in both.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Security.Cryptography;
using System.Text;

namespace DicomHub
{
    public static class Anonymize
    {
        public const string Note = "basic profile with retain_uids/device/institution/patient_characteristics/full_dates and clean_* options; "
            + "retain_modified_dates (date shifting) and retain_safe_private are refused; key_file and mapping_file not supported (key, key_env are)";

        const string Edition = "2024b";
        static readonly string[] OptionOrder =
        {
            "retain_safe_private", "retain_uids", "retain_device_identity", "retain_institution_identity", "retain_patient_characteristics",
            "retain_full_dates", "retain_modified_dates", "clean_descriptors", "clean_structured_content", "clean_graphics",
        };
        static readonly HashSet<string> Refused = new HashSet<string> { "retain_modified_dates", "retain_safe_private" };
        static readonly Dictionary<string, string[]> Codes = new Dictionary<string, string[]>
        {
            { "basic", new[] { "113100", "Basic Application Confidentiality Profile" } },
            { "clean_graphics", new[] { "113103", "Clean Graphics Option" } },
            { "clean_structured_content", new[] { "113104", "Clean Structured Content Option" } },
            { "clean_descriptors", new[] { "113105", "Clean Descriptors Option" } },
            { "retain_full_dates", new[] { "113106", "Retain Longitudinal Temporal Information Full Dates Option" } },
            { "retain_patient_characteristics", new[] { "113108", "Retain Patient Characteristics Option" } },
            { "retain_device_identity", new[] { "113109", "Retain Device Identity Option" } },
            { "retain_uids", new[] { "113110", "Retain UIDs Option" } },
            { "retain_institution_identity", new[] { "113112", "Retain Institution Identity Option" } },
        };
        static readonly Dictionary<string, string> TextDummies = new Dictionary<string, string>
        {
            { "AE", "ANONYMOUS" }, { "AS", "000Y" }, { "CS", "ANONYMIZED" }, { "DA", "19000101" }, { "DT", "19000101000000" }, { "TM", "000000" },
            { "DS", "0" }, { "IS", "0" }, { "LO", "ANONYMIZED" }, { "LT", "ANONYMIZED" }, { "SH", "ANONYMIZED" }, { "ST", "ANONYMIZED" },
            { "UC", "ANONYMIZED" }, { "UT", "ANONYMIZED" }, { "PN", "ANONYMIZED" }, { "UR", "urn:anonymized" },
        };
        static readonly Dictionary<string, int> NumberDummySizes = new Dictionary<string, int>
        {
            { "US", 2 }, { "SS", 2 }, { "UL", 4 }, { "SL", 4 }, { "FL", 4 }, { "FD", 8 }, { "UV", 8 }, { "SV", 8 }, { "AT", 4 },
        };
        static readonly Dictionary<string, string> BurnedInClasses = new Dictionary<string, string>
        {
            { "1.2.840.10008.5.1.4.1.1.7", "Secondary Capture" }, { "1.2.840.10008.5.1.4.1.1.7.1", "Multi-frame Single Bit Secondary Capture" },
            { "1.2.840.10008.5.1.4.1.1.7.2", "Multi-frame Grayscale Byte Secondary Capture" }, { "1.2.840.10008.5.1.4.1.1.7.3", "Multi-frame Grayscale Word Secondary Capture" },
            { "1.2.840.10008.5.1.4.1.1.7.4", "Multi-frame True Color Secondary Capture" }, { "1.2.840.10008.5.1.4.1.1.6.1", "Ultrasound" },
            { "1.2.840.10008.5.1.4.1.1.6.2", "Enhanced Ultrasound Volume" }, { "1.2.840.10008.5.1.4.1.1.3.1", "Ultrasound Multi-frame" },
            { "1.2.840.10008.5.1.4.1.1.104.1", "Encapsulated PDF" }, { "1.2.840.10008.5.1.4.1.1.104.2", "Encapsulated CDA" },
        };
        const uint PatientIdTag = 0x00100020, PatientNameTag = 0x00100010;

        class Settings
        {
            public List<string> Options = new List<string>();
            public byte[] Key;
            public string KeySource;
            public string Prefix;
            public Dictionary<uint, string> Actions = new Dictionary<uint, string>(); // table cell under the options
            public List<Tuple<uint, uint, string>> Repeating = new List<Tuple<uint, uint, string>>(); // (mask, value, cell): 60xx, 50xx rows
            public Iod Iod;
            public Elements.Reading Reading;
        }

        /// One element of the dummy item that replaces a D sequence's items (contract/data/deid-dummy-items.tsv,
        /// as contract/dicom/deid/dummies.py reads it): the tags from the item down, the VR, the value.
        class DummyElement
        {
            public uint[] Path;
            public string Vr;
            public string Value;
        }

        static readonly HashSet<string> FreeTextVrs = new HashSet<string> { "LT", "ST", "UT", "UC" };
        static Dictionary<uint, List<DummyElement>> dummyItems;

        public static Result Run(Job job)
        {
            string output = job.RequireOutput();
            Settings settings = SettingsFrom(job);
            gdcm.Reader reader = Files.Read(job.RequireInput());
            gdcm.File file = reader.GetFile();
            gdcm.DataSet ds = file.GetDataSet();
            settings.Reading = Elements.Reading.For(file);
            CheckBurnedIn(ds, settings, job.Bool("allow_burned_in"));
            settings.Iod = Iod.ForSopClass(Text(ds, 0x00080016, settings));
            Clean(ds, settings, PatientKey(ds, settings), "", false);
            RemoveOverlayLeftovers(ds);
            Mark(ds, settings);
            RebuildFileMeta(file, settings);
            Files.WriteDicom(file, output, job.Overwrite, checkMeta: ds.FindDataElement(new gdcm.Tag(0x0008, 0x0018)));
            var result = new Result();
            result.Metadata["profile"] = "PS3.15 E.1-1 " + Edition + " basic";
            result.Metadata["profile_options"] = settings.Options.Cast<object>().ToList();
            result.Metadata["key_source"] = settings.KeySource;
            result.Metadata["patient_id"] = Text(ds, PatientIdTag, settings) ?? "";
            result.Metadata["study_instance_uid"] = Text(ds, 0x0020000D, settings) ?? "";
            result.Metadata["series_instance_uid"] = Text(ds, 0x0020000E, settings) ?? "";
            result.Metadata["sop_instance_uid"] = Text(ds, 0x00080018, settings) ?? "";
            result.OutputFiles.Add(Path.GetFullPath(output));
            return result;
        }

        // -- settings and the table -------------------------------------------------------------------
        static Settings SettingsFrom(Job job)
        {
            var settings = new Settings { Prefix = job.Text("patient_prefix") };
            object given;
            if (job.Options.TryGetValue("profile_options", out given) && given != null)
            {
                var chosen = ((List<object>)given).Cast<string>().ToList();
                foreach (string name in chosen)
                {
                    if (Array.IndexOf(OptionOrder, name) < 0) throw new HubException("invalid_request", "unknown profile option '" + name + "'");
                    if (Refused.Contains(name)) throw new HubException("unsupported_option", "csharp does not implement the " + name + " option", "use backend python for " + name);
                }
                settings.Options = OptionOrder.Where(chosen.Contains).ToList();
            }
            string[] keyOptions = { "key", "key_env" };
            if (keyOptions.Count(job.Has) > 1) throw new HubException("invalid_request", "options key and key_env both give a key", "give exactly one of key, key_env");
            if (job.Has("key")) { settings.Key = CheckedKey(job.Text("key"), "options.key"); settings.KeySource = "option"; }
            else if (job.Has("key_env"))
            {
                string name = job.Text("key_env");
                string value = Environment.GetEnvironmentVariable(name);
                if (value == null) throw new HubException("invalid_request", "environment variable " + name + " is not set", "export " + name + "=<secret of at least 16 characters>");
                settings.Key = CheckedKey(value, "environment variable " + name);
                settings.KeySource = "key_env";
            }
            else
            {
                var random = new byte[32];
                using (var rng = RandomNumberGenerator.Create()) rng.GetBytes(random);
                settings.Key = Encoding.ASCII.GetBytes(Hex(random, 32).ToLowerInvariant());
                settings.KeySource = "random";
            }
            LoadActions(settings);
            return settings;
        }

        static byte[] CheckedKey(string value, string where)
        {
            value = value.Trim();
            if (value.Length < 16) throw new HubException("invalid_request", "the key in " + where + " is shorter than 16 characters", "use a long random secret (e.g. `openssl rand -hex 32`)");
            return Encoding.UTF8.GetBytes(value);
        }

        /// Table E.1-1 -> the cell per tag under the chosen options (keep-options first, then
        /// clean-options, so cleaning wins a conflict); `Resolve` settles combined cells.
        static void LoadActions(Settings settings)
        {
            LoadActions(settings, "annex-e.tsv");
            LoadActions(settings, "annex-e-repeating.tsv");
        }

        static void LoadActions(Settings settings, string resource)
        {
            string[] lines;
            using (Stream stream = Assembly.GetExecutingAssembly().GetManifestResourceStream(resource))
            using (var reader = new StreamReader(stream, Encoding.UTF8))
                lines = reader.ReadToEnd().Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.Length > 0 && !l.StartsWith("#")).ToArray();
            string[] header = lines[0].Split('\t');
            var ordered = settings.Options.OrderBy(n => n.StartsWith("clean") ? 1 : 0).ToList();
            foreach (string line in lines.Skip(1))
            {
                string[] cells = line.Split('\t');
                string cell = cells[Array.IndexOf(header, "basic_action")].Trim();
                foreach (string option in ordered)
                {
                    int column = Array.IndexOf(header, option);
                    if (column < cells.Length && cells[column].Trim().Length > 0) cell = cells[column].Trim();
                }
                string tag = cells[0].Trim('(', ')').Replace(",", "");
                if (tag.IndexOf('x') < 0) { settings.Actions[Convert.ToUInt32(tag, 16)] = cell; continue; }
                uint mask = Convert.ToUInt32(new string(tag.Select(c => c == 'x' ? '0' : 'F').ToArray()), 16);
                settings.Repeating.Add(Tuple.Create(mask, Convert.ToUInt32(tag.Replace('x', '0'), 16), cell));
            }
        }

        /// The table cell for a tag: its own row, else a repeating-group row that matches it; null if not listed.
        static string CellFor(Settings settings, uint key)
        {
            string cell;
            if (settings.Actions.TryGetValue(key, out cell)) return cell;
            foreach (var row in settings.Repeating)
                if ((key & row.Item1) == row.Item2) return row.Item3;
            return null;
        }

        /// A cell -> one action: 'X/Z/U*' -> U; 'X/Z/D' -> X, Z or D when the IOD makes the attribute
        /// optional, type 2 or type 1 (requirement "3", "2", "1"), else the first (most protective).
        static char Resolve(string cell, string requirement)
        {
            if (cell.EndsWith("U*")) return 'U';
            string[] choices = cell.Split('/');
            if (choices.Length == 1 || requirement == null) return choices[0][0];
            string preference = requirement == "1" ? "DZX" : requirement == "2" ? "ZDX" : "XZD";
            return preference.First(c => choices.Contains(c.ToString()));
        }

        /// The action for a public element at `parent`, or '\0' to keep an attribute the table does not
        /// list and the IOD defines there; unlisted attributes the IOD does not need are removed.
        static char Decide(Settings settings, string parent, gdcm.Tag tag)
        {
            uint key = tag.GetElementTag();
            string path = Iod.Join(parent, key), cell = CellFor(settings, key);
            if (cell != null) return Resolve(cell, settings.Iod.Requirement(path));
            if (Elements.Keyword(tag).Length == 0 || (settings.Iod.Describes(parent) && !settings.Iod.Defines(path))) return 'X';
            return '\0';
        }

        // -- the data set -------------------------------------------------------------------------------
        static void CheckBurnedIn(gdcm.DataSet ds, Settings settings, bool allowed)
        {
            if (allowed) return;
            string flag = (Text(ds, 0x00280301, settings) ?? "").ToUpperInvariant();
            string sopClass = Text(ds, 0x00080016, settings) ?? "";
            string reason = null;
            if (flag == "YES") reason = "Burned In Annotation (0028,0301) is YES";
            else if (BurnedInClasses.ContainsKey(sopClass) && flag != "NO") reason = BurnedInClasses[sopClass] + " objects usually carry burned-in text";
            if (reason != null)
                throw new HubException("invalid_request", "refusing to de-identify: " + reason + "; the pixels may show patient identity and are copied unchanged",
                    "check or redact the pixels first, then set options.allow_burned_in to true");
        }

        /// One data set or item; `cleanText` inside a sequence the profile cleans (C): unlisted free text is replaced.
        static void Clean(gdcm.DataSet ds, Settings settings, string patientKey, string parent, bool cleanText)
        {
            foreach (gdcm.DataElement de in Elements.Iterate(ds).ToList())
            {
                gdcm.Tag tag = de.GetTag();
                uint key = tag.GetElementTag();
                ushort group = tag.GetGroup(), element = tag.GetElement();
                if ((group & 1) == 1 || element == 0 || group == 0x0002) { ds.Remove(tag); continue; } // private, group length
                char action = Decide(settings, parent, tag);
                if (action == '\0')
                {
                    string vr = Elements.VrOf(de);
                    if (vr == "SQ") CleanItems(ds, de, settings, patientKey, Iod.Join(parent, key), cleanText);
                    else if (cleanText && FreeTextVrs.Contains(vr) && de.GetVL() > 0) Edit.SetText(ds, tag, vr, "ANONYMIZED");
                    continue;
                }
                Apply(ds, de, action, settings, patientKey, parent, cleanText);
            }
        }

        /// Overlay groups (60xx) left without Overlay Data (60xx,3000) describe an overlay that is gone
        /// (Overlay Data is Type 1): the whole group goes, as in contract/dicom/deid/rules.py.
        static void RemoveOverlayLeftovers(gdcm.DataSet ds)
        {
            var tags = Elements.Iterate(ds).Select(de => de.GetTag()).ToList();
            var withData = new HashSet<ushort>(tags.Where(t => t.GetGroup() >> 8 == 0x60 && t.GetElement() == 0x3000).Select(t => t.GetGroup()));
            foreach (gdcm.Tag tag in tags)
                if (tag.GetGroup() >> 8 == 0x60 && !withData.Contains(tag.GetGroup())) ds.Remove(tag);
        }

        static void CleanItems(gdcm.DataSet ds, gdcm.DataElement de, Settings settings, string patientKey, string path, bool cleanText)
        {
            if (de.IsEmpty()) return;
            gdcm.SmartPtrSQ sq = de.GetValueAsSQ();
            // Items that cannot be parsed cannot be inspected: the sequence goes, as in the Python engine.
            if (sq == null || sq.GetPointer() == null) { ds.Remove(de.GetTag()); return; }
            Files.KeepAlive.Add(sq);
            for (uint i = 1; i <= sq.GetNumberOfItems(); i++) Clean(sq.GetItem(i).GetNestedDataSet(), settings, patientKey, path, cleanText);
            // GetValueAsSQ may have parsed a copy (implicit VR, UN): store the cleaned items back.
            var replaced = new gdcm.DataElement(de.GetTag());
            replaced.SetVR(new gdcm.VR(gdcm.VR.VRType.SQ));
            replaced.SetValue(sq.GetPointer());
            replaced.SetVLToUndefined();
            ds.Replace(replaced);
        }

        static void Apply(gdcm.DataSet ds, gdcm.DataElement de, char action, Settings settings, string patientKey, string parent, bool cleanText)
        {
            gdcm.Tag tag = de.GetTag();
            uint key = tag.GetElementTag();
            string vr = Elements.VrOf(de);
            if (action == 'X') { ds.Remove(tag); return; }
            // A D sequence (also one GDCM's dictionary does not know, read as UN): one dummy item, never the original items.
            if (action == 'D' && (vr == "SQ" || DummyItems().ContainsKey(key))) { ds.Replace(DummySequence(tag)); return; }
            if (vr == "SQ")
            {
                if (action == 'Z') Edit.SetBytes(ds, tag, "SQ", new byte[0]);
                else CleanItems(ds, de, settings, patientKey, Iod.Join(parent, key), cleanText || action == 'C');
                return;
            }
            if (action == 'K') return;
            byte[] raw = Elements.Raw(de);
            bool empty = raw == null || raw.Length == 0;
            if ((key == PatientIdTag || key == PatientNameTag) && (action == 'Z' || action == 'D'))
            {
                string value = key == PatientIdTag
                    ? settings.Prefix + Hex(Digest(settings, "patient-id", Text(ds, PatientIdTag, settings) ?? ""), 8)
                    : (settings.Prefix.Length > 0 ? settings.Prefix : "ANON") + "^" + Hex(Digest(settings, "patient-name", patientKey), 4);
                Edit.SetText(ds, tag, vr, value);
            }
            else if (action == 'U' || (action == 'D' && vr == "UI"))
            {
                if (vr != "UI" || empty) { Edit.SetBytes(ds, tag, vr, new byte[0]); return; }
                string[] uids = Encoding.ASCII.GetString(raw).TrimEnd('\0', ' ').Split('\\');
                Edit.SetText(ds, tag, "UI", string.Join("\\", uids.Select(u => NewUid(settings, u))));
            }
            else if (action == 'Z' || action == 'C' || empty) Edit.SetBytes(ds, tag, vr, new byte[0]); // C: no date shifting, so emptied
            else if (TextDummies.ContainsKey(vr)) Edit.SetText(ds, tag, vr, TextDummies[vr]);
            else Edit.SetBytes(ds, tag, vr, new byte[NumberDummySizes.ContainsKey(vr) ? NumberDummySizes[vr] : 2]);
        }

        // -- dummy items for D sequences ------------------------------------------------------------------
        static Dictionary<uint, List<DummyElement>> DummyItems()
        {
            if (dummyItems != null) return dummyItems;
            var found = new Dictionary<uint, List<DummyElement>>();
            string[] lines;
            using (Stream stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("dummy-items.tsv"))
            using (var reader = new StreamReader(stream, Encoding.UTF8))
                lines = reader.ReadToEnd().Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.Length > 0 && !l.StartsWith("#")).ToArray();
            foreach (string line in lines.Skip(1)) // the header
            {
                string[] cells = line.Split('\t');
                uint sequence = ParseTag(cells[0]);
                if (!found.ContainsKey(sequence)) found[sequence] = new List<DummyElement>();
                found[sequence].Add(new DummyElement { Path = cells[1].Split('>').Select(ParseTag).ToArray(), Vr = cells[2].Trim(), Value = cells[3].Trim() });
            }
            return dummyItems = found;
        }

        static uint ParseTag(string text) { return Convert.ToUInt32(text.Trim().Trim('(', ')').Replace(",", ""), 16); }

        /// The sequence `tag` holding its one dummy item; a D sequence without one is our bug, never a copy.
        static gdcm.DataElement DummySequence(gdcm.Tag tag)
        {
            List<DummyElement> elements;
            if (!DummyItems().TryGetValue(tag.GetElementTag(), out elements))
                throw new HubException("internal_error", "no dummy item is defined for sequence (" + tag.GetGroup().ToString("X4") + "," + tag.GetElement().ToString("X4") + "), whose Annex E action is D",
                    "add its item to contract/data/deid-dummy-items.tsv");
            return SequenceOf(tag, new[] { elements.Select(e => Tuple.Create(e, 0)).ToList() });
        }

        /// A sequence element of `items`, each a list of (dummy element, depth): depth 0 is this level.
        static gdcm.DataElement SequenceOf(gdcm.Tag tag, IEnumerable<List<Tuple<DummyElement, int>>> items)
        {
            gdcm.SmartPtrSQ sq = gdcm.SequenceOfItems.New();
            Files.KeepAlive.Add(sq);
            sq.SetLengthToUndefined();
            foreach (var elements in items)
            {
                var item = new gdcm.Item();
                item.SetVLToUndefined();
                gdcm.DataSet nested = item.GetNestedDataSet();
                foreach (var group in elements.GroupBy(e => e.Item1.Path[e.Item2]))
                {
                    var first = group.First();
                    var child = new gdcm.Tag(group.Key);
                    if (first.Item1.Path.Length == first.Item2 + 1) SetDummy(nested, child, first.Item1);
                    else nested.Replace(SequenceOf(child, new[] { group.Select(e => Tuple.Create(e.Item1, e.Item2 + 1)).ToList() }));
                }
                sq.AddItem(item);
            }
            var de = new gdcm.DataElement(tag);
            de.SetVR(new gdcm.VR(gdcm.VR.VRType.SQ));
            de.SetValue(sq.GetPointer());
            de.SetVLToUndefined();
            return de;
        }

        static void SetDummy(gdcm.DataSet ds, gdcm.Tag tag, DummyElement element)
        {
            string[] values = element.Value.Split('\\');
            switch (element.Vr)
            {
                case "SQ": ds.Replace(SequenceOf(tag, new List<Tuple<DummyElement, int>>[0])); break;
                case "OB": case "OW": case "UN":
                    Edit.SetBytes(ds, tag, element.Vr, Enumerable.Range(0, element.Value.Length / 2).Select(i => Convert.ToByte(element.Value.Substring(2 * i, 2), 16)).ToArray()); break;
                case "FL": Edit.SetBytes(ds, tag, "FL", values.SelectMany(v => BitConverter.GetBytes(float.Parse(v, System.Globalization.CultureInfo.InvariantCulture))).ToArray()); break;
                case "FD": Edit.SetBytes(ds, tag, "FD", values.SelectMany(v => BitConverter.GetBytes(double.Parse(v, System.Globalization.CultureInfo.InvariantCulture))).ToArray()); break;
                case "US": Edit.SetBytes(ds, tag, "US", values.SelectMany(v => BitConverter.GetBytes(ushort.Parse(v))).ToArray()); break;
                default: Edit.SetText(ds, tag, element.Vr, element.Value); break;
            }
        }

        static void Mark(gdcm.DataSet ds, Settings settings)
        {
            Edit.SetText(ds, new gdcm.Tag(0x0012, 0x0062), "CS", "YES");
            var methods = new List<string> { "dicom-hub PS3.15 E.1-1 " + Edition + " basic profile" };
            methods.AddRange(settings.Options);
            Edit.SetText(ds, new gdcm.Tag(0x0012, 0x0063), "LO", string.Join("\\", methods));
            // A reference-counted sequence: the element shares it, so C# must not free it on its own.
            gdcm.SmartPtrSQ sq = gdcm.SequenceOfItems.New();
            Files.KeepAlive.Add(sq);
            sq.SetLengthToUndefined();
            foreach (string name in new[] { "basic" }.Concat(settings.Options))
            {
                var item = new gdcm.Item();
                item.SetVLToUndefined();
                gdcm.DataSet nested = item.GetNestedDataSet();
                Edit.SetText(nested, new gdcm.Tag(0x0008, 0x0100), "SH", Codes[name][0]);
                Edit.SetText(nested, new gdcm.Tag(0x0008, 0x0102), "SH", "DCM");
                Edit.SetText(nested, new gdcm.Tag(0x0008, 0x0104), "LO", Codes[name][1]);
                sq.AddItem(item);
            }
            var codes = new gdcm.DataElement(new gdcm.Tag(0x0012, 0x0064));
            codes.SetVR(new gdcm.VR(gdcm.VR.VRType.SQ));
            codes.SetValue(sq.GetPointer());
            codes.SetVLToUndefined();
            ds.Replace(codes);
            string longitudinal = settings.Options.Contains("retain_full_dates") ? "UNMODIFIED" : "REMOVED";
            Edit.SetText(ds, new gdcm.Tag(0x0028, 0x0303), "CS", longitudinal);
        }

        /// Group 0002 keeps only what describes the file: SOP class and instance (the new UID), transfer syntax.
        static void RebuildFileMeta(gdcm.File file, Settings settings)
        {
            gdcm.FileMetaInformation header = file.GetHeader();
            string sop = Text(file.GetDataSet(), 0x00080018, settings);
            string oldSop = Text(header, 0x00020003, settings);
            if (sop == null && oldSop != null) sop = Resolve(settings.Actions[0x00020003], null) == 'U' ? NewUid(settings, oldSop) : oldSop;
            bool hasClass = Text(file.GetDataSet(), 0x00080016, settings) != null || Text(header, 0x00020002, settings) != null;
            if (sop == null || !hasClass)
                throw new HubException("decode_error", "the file has no SOP Class UID or no SOP Instance UID (in the data set or the file meta), so no valid de-identified DICOM file can be written",
                    "this is not a storable DICOM instance; check where the file came from");
            var keep = new HashSet<uint> { 0x00020001, 0x00020002, 0x00020010 };
            foreach (gdcm.DataElement de in Elements.Iterate(header).ToList())
                if (!keep.Contains(de.GetTag().GetElementTag())) header.Remove(de.GetTag());
            Edit.SetText(header, new gdcm.Tag(0x0002, 0x0003), "UI", sop);
            Edit.SetText(header, new gdcm.Tag(0x0002, 0x0012), "UI", gdcm.FileMetaInformation.GetImplementationClassUID());
            Edit.SetText(header, new gdcm.Tag(0x0002, 0x0013), "SH", gdcm.FileMetaInformation.GetImplementationVersionName());
            // (0002,0000): the byte length of the rest of group 0002 (explicit VR little endian).
            uint length = 0;
            foreach (gdcm.DataElement de in Elements.Iterate(header))
                if (de.GetTag().GetElement() != 0) length += (Elements.VrOf(de) == "OB" ? 12u : 8u) + (uint)de.GetVL();
            Edit.SetBytes(header, new gdcm.Tag(0x0002, 0x0000), "UL", BitConverter.GetBytes(length));
            gdcm.FileMetaInformation.SetSourceApplicationEntityTitle(""); // GDCM would add its own
        }

        // -- pseudonyms (contract/dicom/deid/pseudonyms.py, the same bytes) ---------------------------
        static byte[] Digest(Settings settings, string kind, string original)
        {
            using (var hmac = new HMACSHA256(settings.Key))
                return hmac.ComputeHash(Encoding.UTF8.GetBytes(kind + "\0" + original));
        }

        static string NewUid(Settings settings, string original)
        {
            original = original.Trim().TrimEnd('\0');
            if (original.Length == 0 || original.StartsWith("1.2.840.10008.")) return original;
            return "2.25." + Decimal(Digest(settings, "uid", original), 16);
        }

        /// The first `count` bytes as an unsigned big-endian integer, in decimal.
        static string Decimal(byte[] bytes, int count)
        {
            var digits = new List<char>();
            byte[] number = bytes.Take(count).ToArray();
            while (number.Any(b => b != 0))
            {
                int remainder = 0;
                for (int i = 0; i < number.Length; i++)
                {
                    int value = remainder * 256 + number[i];
                    number[i] = (byte)(value / 10);
                    remainder = value % 10;
                }
                digits.Add((char)('0' + remainder));
            }
            digits.Reverse();
            return digits.Count == 0 ? "0" : new string(digits.ToArray());
        }

        static string Hex(byte[] bytes, int count)
        {
            return string.Concat(bytes.Take(count).Select(b => b.ToString("X2")));
        }

        static string PatientKey(gdcm.DataSet ds, Settings settings)
        {
            return Text(ds, PatientIdTag, settings) ?? Text(ds, PatientNameTag, settings) ?? "";
        }

        static string Text(gdcm.DataSet ds, uint tag, Settings settings)
        {
            string text = Elements.TextOf(ds, new gdcm.Tag(tag), settings.Reading);
            return string.IsNullOrEmpty(text) ? null : text;
        }
    }
}
