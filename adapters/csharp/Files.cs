// Files.cs: the contract's file rules on the C# side: typed read errors, and outputs written to a
// temporary file beside the target and moved into place only when complete.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;

namespace DicomHub
{
    public static class Files
    {
        /// GDCM objects that must outlive the C# wrappers pointing into them (readers own their
        /// data sets; a sequence parsed from implicit VR bytes owns its items). SWIG finalizers
        /// would otherwise free them while a view is still in use; cleared between requests.
        public static readonly List<object> KeepAlive = new List<object>();

        /// Read a DICOM file with GDCM; a missing, non-DICOM or damaged file is a typed error.
        public static gdcm.Reader Read(string path)
        {
            CheckInput(path);
            var reader = new gdcm.Reader();
            reader.SetFileName(path);
            KeepAlive.Add(reader);
            if (!reader.Read()) throw ReadFailure(path);
            CheckComplete(reader.GetFile(), path);
            return reader;
        }

        static readonly string[] LongHeaderVRs = { "OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT", "SV", "UV" };

        /// GDCM pads a value cut short by the end of the file; add up what the top-level elements
        /// declare and compare with the file size, so truncation is `decode_error` (as in pydicom).
        static void CheckComplete(gdcm.File file, string path)
        {
            string ts = Elements.TransferSyntaxUid(file);
            if (!IsDicm(path) || ts == null || ts == "1.2.840.10008.1.2.1.99") return;
            bool implicitVr = ts == "1.2.840.10008.1.2";
            long expected = (uint)file.GetHeader().GetFullLength(); // preamble, DICM and group 0002
            foreach (gdcm.DataElement de in Elements.Iterate(file.GetDataSet()))
            {
                gdcm.VL vl = de.GetVL();
                if (vl.IsUndefined()) return; // sequences and encapsulated pixel data: no simple sum
                string vr = gdcm.VR.GetVRString(de.GetVR());
                expected += (implicitVr ? 8 : Array.IndexOf(LongHeaderVRs, vr) >= 0 ? 12 : 8) + (uint)vl;
            }
            long size = new FileInfo(path).Length;
            if (expected > size)
                throw new HubException("decode_error", Path.GetFileName(path) + " is truncated: its elements declare " + expected + " bytes but the file has " + size, "the file is incomplete; copy or export it again");
        }

        /// Read a file whose pixels are needed (decoded through GDCM's codecs).
        public static gdcm.ImageReader ReadImage(string path)
        {
            CheckInput(path);
            // GDCM 3.0 aborts the whole process (a failed assertion) on a Frame Increment Pointer
            // without Number of Frames; look at the header first and refuse such files cleanly.
            var header = new gdcm.Reader();
            KeepAlive.Add(header);
            header.SetFileName(path);
            if (!header.ReadUpToTag(new gdcm.Tag(0x7FE0, 0x0010))) throw ReadFailure(path);
            gdcm.DataSet ds = header.GetFile().GetDataSet();
            if (!HasPixelData(path))
                throw new HubException("invalid_request", Path.GetFileName(path) + " has no pixel data", "this op needs an image; use info or dump for other objects");
            if (ds.FindDataElement(new gdcm.Tag(0x0028, 0x0009)) && !ds.FindDataElement(new gdcm.Tag(0x0028, 0x0008)))
                throw new HubException("decode_error", Path.GetFileName(path) + " has a Frame Increment Pointer but no Number of Frames, which GDCM cannot decode",
                    "use backend python, or add NumberOfFrames with modify_tags");
            var reader = new gdcm.ImageReader();
            KeepAlive.Add(reader);
            reader.SetFileName(path);
            if (reader.Read()) return reader;
            Read(path); // not DICOM at all, or damaged: the same errors as for the other ops
            throw new HubException("decode_error", "GDCM cannot decode the image of " + Path.GetFileName(path), "the file has no pixel data, or a transfer syntax GDCM cannot decode");
        }

        /// Whether the top-level data set has Pixel Data (or Float / Double Float Pixel Data).
        public static bool HasPixelData(string path)
        {
            var reader = new gdcm.Reader();
            KeepAlive.Add(reader);
            reader.SetFileName(path);
            var tags = new gdcm.TagSetType();
            foreach (ushort element in new ushort[] { 0x0008, 0x0009, 0x0010 }) tags.Add(new gdcm.Tag(0x7FE0, element));
            if (reader.ReadSelectedTags(tags, false) && HasAny(reader.GetFile().GetDataSet())) return true;
            // ReadSelectedTags finds nothing in a deflated data set: a full read decides.
            var full = new gdcm.Reader();
            KeepAlive.Add(full);
            full.SetFileName(path);
            return full.Read() && HasAny(full.GetFile().GetDataSet());
        }

        static bool HasAny(gdcm.DataSet ds)
        {
            return new ushort[] { 0x0008, 0x0009, 0x0010 }.Any(e => ds.FindDataElement(new gdcm.Tag(0x7FE0, e)));
        }

        static void CheckInput(string path)
        {
            if (Directory.Exists(path)) throw new HubException("invalid_request", "input is a directory: " + path, "pass a file");
            if (!File.Exists(path)) throw new HubException("input_not_found", "input not found: " + path, "check the path");
        }

        static HubException ReadFailure(string path)
        {
            if (IsDicm(path)) return new HubException("decode_error", "cannot parse " + Path.GetFileName(path) + ": GDCM stopped reading", "the file is corrupt or truncated");
            return new HubException("not_dicom", "not a DICOM file: " + path, "the file has no DICM marker and does not parse as a DICOM data set");
        }

        public static bool IsDicm(string path)
        {
            var head = new byte[132];
            using (var stream = File.OpenRead(path))
            {
                if (stream.Read(head, 0, 132) != 132) return false;
            }
            return head[128] == 'D' && head[129] == 'I' && head[130] == 'C' && head[131] == 'M';
        }

        /// Run `write` on a scratch file, copy it to a temporary path beside `path`, then move it
        /// into place. Without overwrite an existing output is an error; a failed write leaves
        /// nothing behind. GDCM aborts the whole process (a failed assertion) when it cannot open
        /// or fill its output, so GDCM never writes beside the target: it writes into the working
        /// folder (dicom-hub runs this program in a private folder it removes), and the copy is
        /// done here, where a read-only folder or a full disk is a managed error (output_error).
        public static void WriteAtomic(string path, bool overwrite, Action<string> write)
        {
            if (path == null) throw new HubException("invalid_request", "an output path is needed");
            string full = Path.GetFullPath(path);
            string folder = Path.GetDirectoryName(full);
            if (!overwrite && File.Exists(full)) throw new HubException("output_exists", "output exists: " + full, "choose another path or set options.overwrite to true");
            try { Directory.CreateDirectory(folder); }
            catch (Exception err) { throw new HubException("output_error", "cannot create " + folder + ": " + err.Message, OutputHint); }
            string unique = Guid.NewGuid().ToString("N").Substring(0, 8);
            string tmp = Path.Combine(folder, "." + Path.GetFileName(full) + "." + unique + ".part");
            string scratch = Path.Combine(Directory.GetCurrentDirectory(), ".dicom-hub-" + unique + Path.GetExtension(full));
            try
            {
                using (File.Create(tmp)) { } // the output folder takes files: fail before any work
                write(scratch);
                if (!File.Exists(scratch) || new FileInfo(scratch).Length == 0)
                    throw new HubException("output_error", "nothing was written for " + full, "see stderr for GDCM's messages");
                File.Copy(scratch, tmp, true);
                if (File.Exists(full))
                {
                    if (!overwrite) throw new HubException("output_exists", "output exists: " + full, "set options.overwrite to true");
                    File.Delete(full);
                }
                File.Move(tmp, full);
            }
            catch (HubException) { throw; }
            catch (IOException err) { throw new HubException("output_error", "cannot write " + full + ": " + err.Message, OutputHint); }
            catch (UnauthorizedAccessException err) { throw new HubException("output_error", "cannot write " + full + ": " + err.Message, OutputHint); }
            finally
            {
                try { if (File.Exists(tmp)) File.Delete(tmp); } catch (Exception) { }
                try { if (File.Exists(scratch)) File.Delete(scratch); } catch (Exception) { }
            }
        }

        const string OutputHint = "choose an output folder that exists, is writable and has free space";

        /// Write a GDCM file (after edits) atomically.
        /// `checkMeta: false` writes group 0002 as given (GDCM otherwise insists on rebuilding it
        /// from a SOP Instance UID in the data set, which some valid files lack).
        public static void WriteDicom(gdcm.File file, string path, bool overwrite, bool checkMeta = true)
        {
            WriteAtomic(path, overwrite, tmp =>
            {
                var writer = new gdcm.Writer();
                writer.SetCheckFileMetaInformation(checkMeta);
                writer.SetFile(file);
                writer.SetFileName(tmp);
                if (!writer.Write()) throw new HubException("backend_error", "GDCM failed to write the data set of " + Path.GetFileName(path) + " (its writer gives no reason)", "see stderr for GDCM's messages; try backend python or dcmtk");
            });
        }
    }
}
