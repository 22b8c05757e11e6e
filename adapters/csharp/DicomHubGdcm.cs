// DicomHubGdcm.cs: the entry point. A contract-native dicom-hub backend over GDCM's C# bindings:
// one request JSON on stdin (or NDJSON with --stream), one response JSON line on stdout,
// `--capabilities` describes what it serves. The protocol is in contract/README.md.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Text;

namespace DicomHub
{
    /// A failure with a contract error code (contract/errors.py lists them).
    public class HubException : Exception
    {
        public readonly string Code;
        public readonly string Hint;

        public HubException(string code, string message, string hint = null) : base(message)
        {
            Code = code;
            Hint = hint;
        }
    }

    /// What an op produced.
    public class Result
    {
        public Dictionary<string, object> Metadata = new Dictionary<string, object>();
        public List<string> OutputFiles = new List<string>();
        public string Stdout = "";
    }

    /// One request: op, input path, output path, the options as given, and the catalog defaults of
    /// the others (dicom-hub sends them because --capabilities says "defaults": true), so the
    /// program keeps no defaults of its own.
    public class Job
    {
        public string Op;
        public string Input;
        public string Output;
        public Dictionary<string, object> Options = new Dictionary<string, object>();
        public Dictionary<string, object> Defaults = new Dictionary<string, object>();

        /// The user gave the option (catalog defaults do not count).
        public bool Has(string name) { return Options.ContainsKey(name) && Options[name] != null; }
        /// The file rules: an existing output is replaced only when the request says overwrite: true.
        public bool Overwrite { get { return Has("overwrite") && Bool("overwrite"); } }

        public bool Bool(string name)
        {
            object v = Value(name);
            if (v is bool) return (bool)v;
            throw new HubException("invalid_request", "option '" + name + "' must be true or false");
        }

        public double Number(string name)
        {
            object v = Value(name);
            if (v is long || v is double) return Convert.ToDouble(v);
            throw new HubException("invalid_request", "option '" + name + "' must be a number");
        }

        public string Text(string name)
        {
            object v = Value(name);
            if (v is string) return (string)v;
            throw new HubException("invalid_request", "option '" + name + "' must be a string");
        }

        /// The given value, else the catalog default; an option with neither is read only after Has().
        object Value(string name)
        {
            if (Has(name)) return Options[name];
            object fallback;
            if (Defaults.TryGetValue(name, out fallback) && fallback != null) return fallback;
            throw new HubException("internal_error", "option '" + name + "' was not given and the request has no default for it",
                "dicom-hub sends the catalog defaults in \"defaults\"; a program run by hand must be given every option it reads");
        }

        public string RequireInput()
        {
            if (string.IsNullOrEmpty(Input)) throw new HubException("invalid_request", "op '" + Op + "' needs an input file", "set 'input' to an absolute path");
            return Input;
        }

        public string RequireOutput()
        {
            if (string.IsNullOrEmpty(Output)) throw new HubException("invalid_request", "op '" + Op + "' needs an output file", "set 'output' in the request");
            return Output;
        }
    }

    public static class Program
    {
        public const string ContractVersion = "1.0";
        public const string ProgramVersion = "1.0.0";

        delegate Result OpFunction(Job job);

        class OpEntry
        {
            public OpFunction Run;
            public string[] Options;
            public string Note;
        }

        static readonly Dictionary<string, OpEntry> Ops = new Dictionary<string, OpEntry>
        {
            { "info", new OpEntry { Run = Elements.Info, Options = new string[0] } },
            { "dump", new OpEntry { Run = Elements.Dump, Options = new[] { "max_depth", "max_value_length", "include_pixel_data" } } },
            { "to_json", new OpEntry { Run = Elements.ToJson, Options = new[] { "bulk_data", "include_file_meta", "indent" } } },
            { "modify_tags", new OpEntry { Run = Edit.ModifyTags, Options = new[] { "set", "delete", "vr" } } },
            { "anonymize", new OpEntry { Run = Anonymize.Run, Options = new[] { "profile_options", "key", "key_env", "patient_prefix", "allow_burned_in" }, Note = Anonymize.Note } },
            { "transcode", new OpEntry { Run = Pixels.Transcode, Options = new[] { "transfer_syntax", "quality", "near_lossless_error", "compression_ratio", "keep_sop_instance_uid" },
                Note = "GDCM codecs: explicit, implicit, deflated, rle, jpeg, jpeg_lossless, jpegls, jpegls_near, j2k, j2k_lossy; no HTJ2K" } },
            { "histogram", new OpEntry { Run = Pixels.Histogram, Options = new[] { "bins", "range", "modality", "frame" } } },
            { "stats", new OpEntry { Run = Pixels.Stats, Options = new[] { "modality", "frame" }, Note = "modality LUT = Rescale Slope/Intercept (a Modality LUT Sequence is not applied)" } },
            { "to_image", new OpEntry { Run = Pixels.ToImage,
                Options = new[] { "format", "frame", "window_center", "window_width", "normalize", "disable_modality_lut", "disable_voi_lut", "force_8bit", "force_16bit" },
                Note = "PNG only (format must be png); linear window; no VOI LUT Sequence or palette colour" } },
        };

        static readonly Dictionary<string, string> Unsupported = new Dictionary<string, string>
        {
            { "from_json", "GDCM's C# bindings expose no JSON decoder usable without C++ streams" },
            { "validate", "not implemented in the C# backend" },
            { "split_multiframe", "not implemented in the C# backend" },
        };

        public static int Main(string[] args)
        {
            Console.OutputEncoding = new UTF8Encoding(false);
            Console.InputEncoding = new UTF8Encoding(false);
            if (args.Contains("--capabilities"))
            {
                Console.Out.WriteLine(Json.Write(Capabilities()));
                return 0;
            }
            if (args.Contains("--version"))
            {
                Console.Out.WriteLine("dicom-hub-gdcm " + ProgramVersion + " (GDCM " + gdcm.Version.GetVersion() + ")");
                return 0;
            }
            if (args.Contains("--stream"))
            {
                int worst = 0;
                string line;
                while ((line = Console.In.ReadLine()) != null)
                    if (line.Trim().Length > 0) worst = Math.Max(worst, Answer(line));
                return worst;
            }
            return Answer(Console.In.ReadToEnd());
        }

        static Dictionary<string, object> Capabilities()
        {
            var ops = new Dictionary<string, object>();
            foreach (var pair in Ops.OrderBy(p => p.Key))
                ops[pair.Key] = new Dictionary<string, object> { { "options", pair.Value.Options.ToList<object>() }, { "note", pair.Value.Note ?? "" } };
            var unsupported = new Dictionary<string, object>();
            foreach (var pair in Unsupported.OrderBy(p => p.Key)) unsupported[pair.Key] = pair.Value;
            return new Dictionary<string, object>
            {
                { "contract", ContractVersion },
                { "name", "csharp" },
                { "version", ProgramVersion + "; GDCM " + gdcm.Version.GetVersion() + "; Mono " + Environment.Version },
                { "language", "csharp" },
                { "toolkit", "GDCM via C#" },
                { "ops", ops },
                { "unsupported", unsupported },
                { "stream", true },
                { "defaults", true },
            };
        }

        /// Answer one request; the exit code follows contract/errors.py (0 ok, 1 failed, 2 invalid request).
        static int Answer(string text)
        {
            var clock = Stopwatch.StartNew();
            var response = new Dictionary<string, object>
            {
                { "contract", ContractVersion }, { "id", null }, { "op", null }, { "backend", "csharp" }, { "ok", true },
                { "returncode", 0 }, { "stdout", "" }, { "stderr", "" }, { "output_files", new List<object>() },
                { "metadata", new Dictionary<string, object>() }, { "duration_ms", 0.0 }, { "error", null },
            };
            int exit = 0;
            try
            {
                Job job = ParseRequest(text, response);
                OpEntry entry;
                if (!Ops.TryGetValue(job.Op, out entry))
                {
                    string reason;
                    if (Unsupported.TryGetValue(job.Op, out reason)) throw new HubException("unsupported_op", "csharp does not serve '" + job.Op + "': " + reason);
                    throw new HubException("unknown_op", "unknown op '" + job.Op + "'", "--capabilities lists the ops");
                }
                foreach (string option in job.Options.Keys)
                    if (option != "timeout" && option != "overwrite" && !entry.Options.Contains(option))
                        throw new HubException("unsupported_option", "csharp does not honour option '" + option + "' of '" + job.Op + "'", "--capabilities lists the options honoured");
                Result result = entry.Run(job);
                response["metadata"] = result.Metadata;
                response["output_files"] = result.OutputFiles.Cast<object>().ToList();
                response["stdout"] = result.Stdout;
            }
            catch (HubException err)
            {
                exit = err.Code == "invalid_request" || err.Code == "unknown_op" ? 2 : 1;
                Fail(response, err.Code, err.Message, err.Hint, exit);
            }
            catch (Exception err)
            {
                exit = 1;
                Console.Error.WriteLine(err.ToString());
                Fail(response, "backend_error", "csharp: " + err.GetType().Name + ": " + err.Message, "see stderr for the stack trace");
            }
            Files.KeepAlive.Clear();
            response["duration_ms"] = Math.Round(clock.Elapsed.TotalMilliseconds, 3);
            Console.Out.WriteLine(Json.Write(response));
            Console.Out.Flush();
            return exit;
        }

        static void Fail(Dictionary<string, object> response, string code, string message, string hint, int exit = 1)
        {
            response["ok"] = false;
            response["returncode"] = exit;
            response["metadata"] = new Dictionary<string, object>();
            response["output_files"] = new List<object>();
            response["error"] = new Dictionary<string, object> { { "code", code }, { "message", message }, { "hint", hint } };
        }

        static Job ParseRequest(string text, Dictionary<string, object> response)
        {
            object parsed;
            try { parsed = Json.Parse(text); }
            catch (FormatException err) { throw new HubException("invalid_request", "request is not valid JSON: " + err.Message, "send one JSON object per request"); }
            var request = parsed as Dictionary<string, object>;
            if (request == null) throw new HubException("invalid_request", "request must be a JSON object");
            object id;
            if (request.TryGetValue("id", out id) && (id is string || id is long)) response["id"] = id;
            object op;
            if (!request.TryGetValue("op", out op) || !(op is string) || ((string)op).Length == 0)
                throw new HubException("invalid_request", "op: field required", "e.g. {\"op\": \"info\", \"input\": \"/abs/file.dcm\"}");
            response["op"] = op;
            object contract;
            if (request.TryGetValue("contract", out contract) && contract is string && ((string)contract).Split('.')[0] != ContractVersion.Split('.')[0])
                throw new HubException("invalid_request", "contract version " + contract + " is not supported (this is " + ContractVersion + ")");
            var job = new Job { Op = (string)op };
            object input;
            if (request.TryGetValue("input", out input) && input != null)
            {
                var list = input as List<object>;
                if (list != null && list.Count == 1) input = list[0];
                if (!(input is string)) throw new HubException("invalid_request", "input: csharp ops take one file path");
                job.Input = (string)input;
            }
            object output;
            if (request.TryGetValue("output", out output) && output != null)
            {
                if (!(output is string)) throw new HubException("invalid_request", "output: must be a path");
                job.Output = (string)output;
            }
            object options;
            if (request.TryGetValue("options", out options) && options != null)
            {
                job.Options = options as Dictionary<string, object>;
                if (job.Options == null) throw new HubException("invalid_request", "options: must be an object");
            }
            object defaults;
            if (request.TryGetValue("defaults", out defaults) && defaults != null)
            {
                job.Defaults = defaults as Dictionary<string, object>;
                if (job.Defaults == null) throw new HubException("invalid_request", "defaults: must be an object");
            }
            return job;
        }
    }
}
