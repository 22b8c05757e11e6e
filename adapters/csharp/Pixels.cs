// Pixels.cs: decoded pixel values (through GDCM's codecs) and the ops on them:
// transcode, stats, to_image.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;

namespace DicomHub
{
    /// Every sample of every frame as doubles (stored values, before any LUT).
    public class PixelArray
    {
        public double[] Values;
        public int Rows, Columns, Samples, Frames, BitsStored;
        public bool Signed;
        public double Slope = 1, Intercept = 0;
        public string Photometric;
        public gdcm.DataSet DataSet;  // the file's data set (window, palette, VOI attributes)
        public Elements.Reading Reading;

        public int FrameLength { get { return Rows * Columns * Samples; } }

        public static PixelArray Read(string path)
        {
            gdcm.ImageReader reader = Files.ReadImage(path);
            gdcm.Image image = reader.GetImage();
            gdcm.PixelFormat format = image.GetPixelFormat();
            var pixels = new PixelArray
            {
                Columns = (int)image.GetDimension(0),
                Rows = (int)image.GetDimension(1),
                Frames = image.GetNumberOfDimensions() > 2 ? (int)image.GetDimension(2) : 1,
                Samples = format.GetSamplesPerPixel(),
                BitsStored = format.GetBitsStored(),
                Signed = format.GetPixelRepresentation() == 1,
                Photometric = image.GetPhotometricInterpretation().GetString().Trim(' ', '\0'),
            };
            // Rescale Slope/Intercept as stored: GDCM's own slope also folds in RT Dose Grid Scaling,
            // which is not part of the Modality LUT (pydicom and DCMTK leave it out too).
            gdcm.File file = reader.GetFile();
            var reading = Elements.Reading.For(file);
            pixels.DataSet = file.GetDataSet();
            pixels.Reading = reading;
            pixels.Slope = Number(Elements.TextOf(file.GetDataSet(), new gdcm.Tag(0x0028, 0x1053), reading), 1);
            pixels.Intercept = Number(Elements.TextOf(file.GetDataSet(), new gdcm.Tag(0x0028, 0x1052), reading), 0);
            var buffer = new byte[image.GetBufferLength()];
            if (!image.GetBuffer(buffer)) throw new HubException("decode_error", "GDCM could not decode the pixel data of " + Path.GetFileName(path), "the transfer syntax may need a codec GDCM lacks");
            pixels.Values = Convert(buffer, format, pixels.Samples, image.GetPlanarConfiguration() == 1, pixels.Rows * pixels.Columns);
            return pixels;
        }

        /// Stored -> modality values in place. A Rescale Slope or Intercept that is NaN or infinite,
        /// or values that overflow, are decode_error (as in the python backend): never NaN in an answer.
        public void Rescale(double[] values)
        {
            foreach (var attribute in new[] { Tuple.Create("(0028,1053) RescaleSlope", Slope), Tuple.Create("(0028,1052) RescaleIntercept", Intercept) })
                if (double.IsNaN(attribute.Item2) || double.IsInfinity(attribute.Item2))
                    throw new HubException("decode_error", attribute.Item1 + " is " + attribute.Item2.ToString(CultureInfo.InvariantCulture) + ", not a finite number",
                        "fix the attribute (modify_tags), or set modality: false to use stored values");
            if (Slope == 1 && Intercept == 0) return;
            for (int i = 0; i < values.Length; i++)
            {
                values[i] = values[i] * Slope + Intercept;
                if (double.IsInfinity(values[i]))
                    throw new HubException("decode_error", "Rescale Slope " + Slope.ToString("R", CultureInfo.InvariantCulture) + " and Intercept " + Intercept.ToString("R", CultureInfo.InvariantCulture) + " take the stored values beyond the range of numbers",
                        "the file's (0028,1053) Rescale Slope is not a usable value; set modality: false to use stored values");
            }
        }

        public static double Number(string text, double fallback)
        {
            double value;
            if (string.IsNullOrEmpty(text)) return fallback;
            string first = text.Split('\\')[0].Trim();
            if (double.TryParse(first, NumberStyles.Float, CultureInfo.InvariantCulture, out value)) return value;
            switch (first.ToLowerInvariant()) // spellings .NET does not parse but pydicom does: not "no value"
            {
                case "inf": case "+inf": case "+infinity": return double.PositiveInfinity;
                case "-inf": return double.NegativeInfinity;
                case "nan": return double.NaN;
                default: return fallback;
            }
        }

        static double[] Convert(byte[] buffer, gdcm.PixelFormat format, int samples, bool planar, int pixelsPerFrame)
        {
            int allocated = format.GetBitsAllocated(), stored = format.GetBitsStored();
            bool signed = format.GetPixelRepresentation() == 1;
            gdcm.PixelFormat.ScalarType type = format.GetScalarType();
            int size = allocated / 8;
            if (allocated % 8 != 0 || size < 1 || size > 4)
                throw new HubException("unsupported_op", "csharp reads 8, 16 and 32-bit pixels, not " + allocated + "-bit", "use the python backend");
            int count = buffer.Length / size;
            var values = new double[count];
            for (int i = 0; i < count; i++)
            {
                if (type == gdcm.PixelFormat.ScalarType.FLOAT32) { values[i] = BitConverter.ToSingle(buffer, i * 4); continue; }
                ulong raw = size == 1 ? buffer[i] : size == 2 ? BitConverter.ToUInt16(buffer, i * 2) : BitConverter.ToUInt32(buffer, i * 4);
                if (stored < allocated) raw &= (1UL << stored) - 1; // bits above BitsStored are not part of the value
                long v = (long)raw;
                if (signed && (raw & (1UL << (stored - 1))) != 0) v -= 1L << stored;
                values[i] = v;
            }
            if (!planar || samples == 1) return values;
            // Planar configuration 1 (RRR...GGG...BBB per frame) -> interleaved RGBRGB...
            var interleaved = new double[count];
            int frameLength = pixelsPerFrame * samples;
            for (int f = 0; f + frameLength <= count; f += frameLength)
                for (int p = 0; p < pixelsPerFrame; p++)
                    for (int s = 0; s < samples; s++)
                        interleaved[f + p * samples + s] = values[f + s * pixelsPerFrame + p];
            return interleaved;
        }

        public double[] Frame(int index)
        {
            if (index < 0 || index >= Frames) throw new HubException("invalid_request", "frame " + index + " does not exist (the file has " + Frames + ")", "frames are numbered from 0");
            var frame = new double[FrameLength];
            Array.Copy(Values, (long)index * FrameLength, frame, 0, FrameLength);
            return frame;
        }
    }

    public static class Pixels
    {
        // -- stats -----------------------------------------------------------------------------------
        public static Result Stats(Job job)
        {
            var result = new Result();
            var m = result.Metadata; // the Python backend's keys (python_backend/pixels/stats.py)
            double[] values = Measured(job, m);
            var sorted = (double[])values.Clone();
            Array.Sort(sorted);
            Summary(values, sorted, m);
            m["median"] = Percentile(sorted, 50);
            m["range"] = sorted[sorted.Length - 1] - sorted[0];
            m["iqr"] = Percentile(sorted, 75) - Percentile(sorted, 25);
            foreach (int p in new[] { 1, 5, 25, 75, 95, 99 }) m["p" + p] = Percentile(sorted, p);
            long zeros = values.LongCount(v => v == 0);
            m["zero_pixels"] = zeros;
            m["zero_percent"] = 100.0 * zeros / values.Length;
            int unique = 0;
            for (int i = 0; i < sorted.Length; i++) if (i == 0 || sorted[i] != sorted[i - 1]) unique++;
            m["unique_values"] = (long)unique;
            m["total_pixels"] = (long)values.Length;
            return result;
        }

        /// numpy.histogram: equal bins over [low, high] (the data's min and max by default), the
        /// last bin closed, values outside the range not counted.
        public static Result Histogram(Job job)
        {
            var result = new Result();
            var m = result.Metadata;
            int bins = (int)job.Number("bins");
            double[] values = Measured(job, m);
            double low = values.Min(), high = values.Max();
            object given;
            if (job.Options.TryGetValue("range", out given) && given != null)
            {
                var range = ((List<object>)given).Select(v => System.Convert.ToDouble(v, CultureInfo.InvariantCulture)).ToList();
                if (!(range[0] < range[1])) throw new HubException("invalid_request", "range must be [low, high] with low < high", "e.g. \"range\": [-1024, 3071]");
                low = range[0];
                high = range[1];
            }
            else if (low == high) { low -= 0.5; high += 0.5; }
            var edges = Enumerable.Range(0, bins + 1).Select(i => low + (high - low) * i / bins).ToArray();
            edges[bins] = high;
            var counts = new long[bins];
            foreach (double v in values)
            {
                if (v < low || v > high) continue;
                int index = Math.Min((int)((v - low) / (high - low) * bins), bins - 1);
                if (v < edges[index]) index--;
                else if (index < bins - 1 && v >= edges[index + 1]) index++;
                counts[index]++;
            }
            m["bins"] = (long)bins;
            m["range"] = new List<object> { low, high };
            m["counts"] = counts.Cast<object>().ToList();
            m["bin_edges"] = edges.Cast<object>().ToList();
            m["counted"] = counts.Sum();
            m["total_pixels"] = (long)values.Length;
            var sorted = (double[])values.Clone();
            Array.Sort(sorted);
            Summary(values, sorted, m);
            return result;
        }

        /// The values both ops measure (one frame or all, Modality LUT applied unless asked not to),
        /// and what they were, in `m`.
        static double[] Measured(Job job, Dictionary<string, object> m)
        {
            PixelArray pixels = PixelArray.Read(job.RequireInput());
            bool modality = job.Bool("modality");
            RefuseUnmeasurable(pixels, modality);
            double[] values = job.Has("frame") ? pixels.Frame((int)job.Number("frame")) : (double[])pixels.Values.Clone();
            if (modality) pixels.Rescale(values);
            m["frames"] = job.Has("frame") ? new List<object> { (long)job.Number("frame") } : Enumerable.Range(0, pixels.Frames).Select(f => (object)(long)f).ToList();
            m["values"] = modality ? "modality" : "stored";
            m["modality_lut_applied"] = modality;
            m["samples_per_pixel"] = (long)pixels.Samples;
            return values;
        }

        /// Inputs whose values this program would misreport: it applies only the top-level Rescale
        /// Slope/Intercept, and measures the samples GDCM decodes (YCbCr stays YCbCr). Refused with the
        /// limit named (contract/input-conditions.json: pixel_format_unsupported) rather than answered wrongly.
        static void RefuseUnmeasurable(PixelArray pixels, bool modality)
        {
            const string other = "use backend python or dcmtk";
            // J2K decoders undo YBR_RCT/YBR_ICT (the samples are RGB); YBR_FULL(_422) and YBR_PARTIAL stay YCbCr.
            if (pixels.Photometric.StartsWith("YBR_FULL") || pixels.Photometric.StartsWith("YBR_PARTIAL"))
                throw new HubException("unsupported_op", "csharp measures decoded samples as they are and does not convert " + pixels.Photometric + " to RGB", other);
            if (!modality) return;
            if (pixels.DataSet.FindDataElement(new gdcm.Tag(0x0028, 0x3000)))
                throw new HubException("unsupported_op", "csharp applies Rescale Slope/Intercept only, not this file's Modality LUT Sequence", other + ", or set modality: false for stored values");
            if (pixels.DataSet.FindDataElement(new gdcm.Tag(0x5200, 0x9229)) || pixels.DataSet.FindDataElement(new gdcm.Tag(0x5200, 0x9230)))
                throw new HubException("unsupported_op", "csharp does not read the rescale of enhanced multi-frame functional groups", other + ", or set modality: false for stored values");
        }

        static void Summary(double[] values, double[] sorted, Dictionary<string, object> m)
        {
            double mean = values.Average(), squares = 0;
            foreach (double v in values) squares += (v - mean) * (v - mean);
            m["min"] = sorted[0];
            m["max"] = sorted[sorted.Length - 1];
            m["mean"] = mean;
            m["std"] = Math.Sqrt(squares / values.Length);
        }

        /// numpy's default ("linear") percentile of sorted values.
        public static double Percentile(double[] sorted, double p)
        {
            double rank = p / 100.0 * (sorted.Length - 1);
            int low = (int)Math.Floor(rank);
            int high = Math.Min(low + 1, sorted.Length - 1);
            return sorted[low] + (sorted[high] - sorted[low]) * (rank - low);
        }

        // -- to_image (rendering in Render.cs) ----------------------------------------------------------
        public static Result ToImage(Job job)
        {
            string output = job.RequireOutput();
            string format = job.Has("format") ? job.Text("format") : null;
            string extension = Path.GetExtension(output).TrimStart('.').ToLowerInvariant();
            if (format == null) format = extension == "" ? "png" : extension;
            if (format != "png") throw new HubException("unsupported_option", "csharp writes PNG only, not " + format, "use format png, or backend python for jpeg/bmp/tiff");
            bool sixteen = job.Bool("force_16bit");
            // window_center/window_width come together, the width is > 0, force_8bit excludes force_16bit: the op's schema says so (dicom-hub checks it before the request reaches this program)
            PixelArray pixels = PixelArray.Read(job.RequireInput());
            int frameIndex = (int)job.Number("frame");
            double[] values = pixels.Frame(frameIndex);
            var metadata = new Dictionary<string, object>();
            ushort[] samples;
            bool grey = pixels.Samples == 1 && pixels.Photometric.StartsWith("MONOCHROME");
            if (grey) samples = Render.Grey(job, pixels, values, sixteen ? 16 : 8, metadata);
            else
            {
                if (sixteen) throw new HubException("invalid_request", "force_16bit is for greyscale images; this one is " + pixels.Photometric, "drop force_16bit for colour images");
                samples = Render.Colour(pixels, values);
                metadata["window"] = null;
                metadata["window_source"] = "none";
                metadata["modality_lut"] = false;
            }
            byte[] png = Png.Encode(pixels.Columns, pixels.Rows, grey ? 1 : 3, sixteen ? 16 : 8, samples);
            Files.WriteAtomic(output, job.Overwrite, tmp => File.WriteAllBytes(tmp, png));
            var result = new Result { Metadata = metadata };
            metadata["output"] = Path.GetFullPath(output);
            metadata["format"] = "png";
            metadata["frame"] = (long)frameIndex;
            metadata["frames"] = (long)pixels.Frames;
            metadata["photometric_interpretation"] = pixels.Photometric;
            metadata["width"] = (long)pixels.Columns;
            metadata["height"] = (long)pixels.Rows;
            metadata["mode"] = grey ? (sixteen ? "I;16" : "L") : "RGB";
            metadata["bit_depth"] = (long)(sixteen ? 16 : 8);
            metadata["samples_per_pixel"] = (long)(grey ? 1 : 3);
            result.OutputFiles.Add(Path.GetFullPath(output));
            return result;
        }

        // -- transcode ---------------------------------------------------------------------------------
        static readonly Dictionary<string, string> Aliases = new Dictionary<string, string>
        {
            { "explicit", "1.2.840.10008.1.2.1" }, { "implicit", "1.2.840.10008.1.2" }, { "deflated", "1.2.840.10008.1.2.1.99" },
            { "rle", "1.2.840.10008.1.2.5" }, { "jpeg", "1.2.840.10008.1.2.4.50" }, { "jpeg_lossless", "1.2.840.10008.1.2.4.70" },
            { "jpegls", "1.2.840.10008.1.2.4.80" }, { "jpegls_near", "1.2.840.10008.1.2.4.81" }, { "j2k", "1.2.840.10008.1.2.4.90" },
            { "j2k_lossy", "1.2.840.10008.1.2.4.91" }, { "htj2k", "1.2.840.10008.1.2.4.203" }, { "htj2k_lossless", "1.2.840.10008.1.2.4.201" },
        };

        public static Result Transcode(Job job)
        {
            string output = job.RequireOutput();
            string name = job.Text("transfer_syntax");  // the catalog requires it
            string uid;
            if (!Aliases.TryGetValue(name.ToLowerInvariant(), out uid)) uid = name;
            gdcm.TransferSyntax.TSType type = gdcm.TransferSyntax.GetTSType(uid);
            if (type == gdcm.TransferSyntax.TSType.TS_END)
            {
                if (uid.StartsWith("1.2.840.10008.1.2"))
                    throw new HubException("codec_unavailable", "GDCM " + gdcm.Version.GetVersion() + " cannot write transfer syntax " + uid, "use backend python (pylibjpeg-openjpeg) for HTJ2K");
                throw new HubException("invalid_request", "unknown transfer syntax '" + name + "'", "use one of " + string.Join(", ", Aliases.Keys) + " or a transfer syntax UID");
            }
            var target = new gdcm.TransferSyntax(type);
            if (!Files.HasPixelData(job.RequireInput())) return TranscodeWithoutPixels(job, output, uid, target);
            gdcm.ImageReader reader = Files.ReadImage(job.RequireInput());

            var change = new gdcm.ImageChangeTransferSyntax();
            Files.KeepAlive.Add(change);
            change.SetTransferSyntax(target);
            change.SetInput(ForEncoder(reader.GetImage(), type));
            ConfigureCodec(change, type, job);
            if (!change.Change())
                throw new HubException("codec_unavailable", "GDCM cannot transcode this image to " + uid, "GDCM's codec refused the pixel format; see stderr");
            gdcm.File file = reader.GetFile();
            bool lossy = target.IsLossy();
            var result = new Result();
            if (lossy)
            {
                double ratio = CompressionRatio(reader.GetImage(), change.GetOutput());
                MarkLossy(file.GetDataSet(), ratio, Methods[type]);
                result.Metadata["compression_ratio"] = Math.Round(ratio, 3);
            }
            if (lossy && !job.Bool("keep_sop_instance_uid"))
            {
                string newUid = new gdcm.UIDGenerator().Generate();
                Edit.SetText(file.GetDataSet(), new gdcm.Tag(0x0008, 0x0018), "UI", newUid);
                Edit.SetText(file.GetHeader(), new gdcm.Tag(0x0002, 0x0003), "UI", newUid);
                result.Metadata["sop_instance_uid"] = newUid;
            }
            Files.WriteAtomic(output, job.Overwrite, tmp =>
            {
                var writer = new gdcm.PixmapWriter();
                writer.SetFile(file);
                writer.SetImage(change.GetOutput());
                writer.SetFileName(tmp);
                if (!writer.Write()) throw new HubException("backend_error", "GDCM's image writer failed on " + Path.GetFileName(output) + " (it gives no reason)", "see stderr for GDCM's messages; try backend python or dcmtk");
            });
            result.Metadata["transfer_syntax"] = uid;
            result.Metadata["transfer_syntax_name"] = Elements.UidName(uid);
            result.Metadata["lossy"] = lossy;
            result.OutputFiles.Add(Path.GetFullPath(output));
            return result;
        }

        static readonly Dictionary<gdcm.TransferSyntax.TSType, string> Methods = new Dictionary<gdcm.TransferSyntax.TSType, string>
        {
            { gdcm.TransferSyntax.TSType.JPEGBaselineProcess1, "ISO_10918_1" }, { gdcm.TransferSyntax.TSType.JPEGExtendedProcess2_4, "ISO_10918_1" },
            { gdcm.TransferSyntax.TSType.JPEGLSNearLossless, "ISO_14495_1" }, { gdcm.TransferSyntax.TSType.JPEG2000, "ISO_15444_1" },
        };

        /// Objects without pixel data (SR, RT plans...): only the encoding of the data set changes.
        static Result TranscodeWithoutPixels(Job job, string output, string uid, gdcm.TransferSyntax target)
        {
            gdcm.File file = Files.Read(job.Input).GetFile();
            file.GetHeader().SetDataSetTransferSyntax(target);
            Edit.SetText(file.GetHeader(), new gdcm.Tag(0x0002, 0x0010), "UI", uid);
            Files.WriteDicom(file, output, job.Overwrite);
            var result = new Result();
            result.Metadata["transfer_syntax"] = uid;
            result.Metadata["transfer_syntax_name"] = Elements.UidName(uid);
            result.Metadata["lossy"] = false;
            result.OutputFiles.Add(Path.GetFullPath(output));
            return result;
        }

        /// Native pixel bytes over the encoded fragments' bytes.
        static double CompressionRatio(gdcm.Image source, gdcm.Image encoded)
        {
            gdcm.SequenceOfFragments fragments = encoded.GetDataElement().GetSequenceOfFragments();
            double compressed = fragments == null ? 0 : fragments.ComputeByteLength();
            return compressed > 0 ? source.GetBufferLength() / compressed : 1;
        }

        /// PS3.3 C.7.6.1.1.5: Lossy Image Compression 01, and ratios and methods accumulate.
        static void MarkLossy(gdcm.DataSet ds, double ratio, string method)
        {
            var reading = new Elements.Reading();
            string oldRatios = Elements.TextOf(ds, new gdcm.Tag(0x0028, 0x2112), reading);
            string oldMethods = Elements.TextOf(ds, new gdcm.Tag(0x0028, 0x2114), reading);
            string ratioText = ratio.ToString("0.00", CultureInfo.InvariantCulture);
            Edit.SetText(ds, new gdcm.Tag(0x0028, 0x2110), "CS", "01");
            Edit.SetText(ds, new gdcm.Tag(0x0028, 0x2112), "DS", string.IsNullOrEmpty(oldRatios) ? ratioText : oldRatios + "\\" + ratioText);
            Edit.SetText(ds, new gdcm.Tag(0x0028, 0x2114), "CS", string.IsNullOrEmpty(oldMethods) ? method : oldMethods + "\\" + method);
        }

        /// Lossy JPEG of an RGB image is stored as YBR_FULL (GDCM would write RGB samples that
        /// decoders take for YCbCr); every other target takes the image as it is.
        static gdcm.Image ForEncoder(gdcm.Image image, gdcm.TransferSyntax.TSType type)
        {
            bool lossyJpeg = type == gdcm.TransferSyntax.TSType.JPEGBaselineProcess1 || type == gdcm.TransferSyntax.TSType.JPEGExtendedProcess2_4;
            if (!lossyJpeg || image.GetPhotometricInterpretation().GetType() != gdcm.PhotometricInterpretation.PIType.RGB) return image;
            var convert = new gdcm.ImageChangePhotometricInterpretation();
            Files.KeepAlive.Add(convert); // its output image lives inside the filter
            convert.SetPhotometricInterpretation(new gdcm.PhotometricInterpretation(gdcm.PhotometricInterpretation.PIType.YBR_FULL));
            convert.SetInput(image);
            if (!convert.Change()) throw new HubException("codec_unavailable", "GDCM cannot convert this RGB image to YBR_FULL for JPEG", "use backend python");
            return convert.GetOutput();
        }

        static void ConfigureCodec(gdcm.ImageChangeTransferSyntax change, gdcm.TransferSyntax.TSType type, Job job)
        {
            switch (type)
            {
                case gdcm.TransferSyntax.TSType.JPEGBaselineProcess1:
                case gdcm.TransferSyntax.TSType.JPEGExtendedProcess2_4:
                    var jpeg = new gdcm.JPEGCodec();
                    jpeg.SetLossless(false);
                    jpeg.SetQuality(job.Number("quality"));
                    change.SetUserCodec(jpeg);
                    break;
                case gdcm.TransferSyntax.TSType.JPEGLSNearLossless:
                    var jls = new gdcm.JPEGLSCodec();
                    jls.SetLossless(false);
                    jls.SetLossyError((int)job.Number("near_lossless_error"));
                    change.SetUserCodec(jls);
                    break;
                case gdcm.TransferSyntax.TSType.JPEG2000:
                    var j2k = new gdcm.JPEG2000Codec();
                    j2k.SetRate(0, job.Number("compression_ratio"));
                    change.SetUserCodec(j2k);
                    break;
                default:
                    if (job.Has("quality") || job.Has("compression_ratio"))
                        throw new HubException("invalid_request", "quality and compression_ratio apply to lossy syntaxes only");
                    break;
            }
        }
    }
}
