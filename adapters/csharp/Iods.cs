// Iods.cs: which attributes each IOD of PS3.3 defines (by path) and their types: the tables the Python
// backend reads (contract/dicom/deid/iods.py), exported by 40-csharp.sh as iods.tsv with keywords
// already resolved to tags, so both backends judge the same paths the same way.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Text;

namespace DicomHub
{
    /// One IOD's attributes. A path is the tags from the top-level data set down, as 8 hex digits
    /// joined by '>' ("" is the top level). The "any IOD" instance (a SOP class the tables do not
    /// describe in full) defines what any IOD defines and settles no combined action.
    public sealed class Iod
    {
        public const string AnyName = "any IOD";
        static readonly string[] Strength = { "1", "1C", "2", "2C", "3" };
        static Dictionary<string, string> sopClasses;
        static Dictionary<string, string[]> iodModules;
        static Dictionary<string, List<KeyValuePair<string, string>>> moduleRows;
        static readonly Dictionary<string, Iod> Built = new Dictionary<string, Iod>();

        public readonly string Name;
        readonly Dictionary<string, string> types = new Dictionary<string, string>();
        readonly HashSet<string> described = new HashSet<string>();

        Iod(string name, IEnumerable<string> modules)
        {
            Name = name;
            foreach (string module in modules)
            {
                List<KeyValuePair<string, string>> rows;
                if (!moduleRows.TryGetValue(module, out rows)) continue;
                foreach (var row in rows)
                {
                    string known;
                    if (!types.TryGetValue(row.Key, out known) || Array.IndexOf(Strength, row.Value) < Array.IndexOf(Strength, known))
                        types[row.Key] = row.Value;
                }
            }
            described.Add("");
            foreach (string path in types.Keys)
                for (int at = path.IndexOf('>'); at >= 0; at = path.IndexOf('>', at + 1)) described.Add(path.Substring(0, at));
        }

        public static Iod ForSopClass(string sopClass)
        {
            Load();
            string iod;
            string[] modules;
            if (sopClass == null || !sopClasses.TryGetValue(sopClass.Trim(), out iod) || !iodModules.TryGetValue(iod, out modules)
                || modules.Any(m => !moduleRows.ContainsKey(m)))
                return Named(AnyName, moduleRows.Keys);
            return Named(iod, modules);
        }

        static Iod Named(string name, IEnumerable<string> modules)
        {
            Iod iod;
            if (!Built.TryGetValue(name, out iod)) Built[name] = iod = new Iod(name, modules);
            return iod;
        }

        public static string Join(string parent, uint tag)
        {
            string text = tag.ToString("X8");
            return parent.Length == 0 ? text : parent + ">" + text;
        }

        /// Whether the tables list what items at `parent` may hold (deep SR trees run out of depth).
        public bool Describes(string parent) { return described.Contains(parent); }

        public bool Defines(string path) { return types.ContainsKey(Normalize(path)); }

        /// "1", "2" or "3" for an attribute this IOD defines at `path`; null when it does not, or for "any IOD".
        public string Requirement(string path)
        {
            string kind;
            if (Name == AnyName || !types.TryGetValue(Normalize(path), out kind)) return null;
            return kind.Substring(0, 1);
        }

        /// Overlay (60xx) and curve (50xx) groups are defined once, under 6000 and 5000.
        static string Normalize(string path)
        {
            if (path.IndexOf("60", StringComparison.Ordinal) < 0 && path.IndexOf("50", StringComparison.Ordinal) < 0) return path;
            return string.Join(">", path.Split('>').Select(t => t.StartsWith("60") || t.StartsWith("50") ? t.Substring(0, 2) + "00" + t.Substring(4) : t));
        }

        static void Load()
        {
            if (sopClasses != null) return;
            var sops = new Dictionary<string, string>();
            var iods = new Dictionary<string, string[]>();
            var modules = new Dictionary<string, List<KeyValuePair<string, string>>>();
            using (Stream stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("iods.tsv"))
            using (var reader = new StreamReader(stream, Encoding.ASCII))
            {
                string line;
                while ((line = reader.ReadLine()) != null)
                {
                    string[] cells = line.Split('\t');
                    if (cells[0] == "S") sops[cells[1]] = cells[2];
                    else if (cells[0] == "I") iods[cells[1]] = cells[2].Split(' ');
                    else if (cells[0] == "M")
                    {
                        List<KeyValuePair<string, string>> rows;
                        if (!modules.TryGetValue(cells[1], out rows)) modules[cells[1]] = rows = new List<KeyValuePair<string, string>>();
                        rows.Add(new KeyValuePair<string, string>(cells[3], cells[2]));
                    }
                }
            }
            iodModules = iods;
            moduleRows = modules;
            sopClasses = sops;
        }
    }
}
