// Render.cs: display values for to_image, step for step as python_backend/pixels/render.py does
// it: Modality LUT (rescale), then the VOI window (manual, normalize, the file's, min-max when VOI
// is disabled, else auto), rounded half to even; colour images to 8-bit RGB.
using System;
using System.Collections.Generic;
using System.Linq;

namespace DicomHub
{
    public static class Render
    {
        class Window
        {
            public string Source, Function = "LINEAR", Method = "window";
            public double Center, Width;
        }

        public static ushort[] Grey(Job job, PixelArray pixels, double[] values, int bits, Dictionary<string, object> metadata)
        {
            bool modality = !job.Bool("disable_modality_lut");
            bool rescaled = modality && (pixels.Slope != 1 || pixels.Intercept != 0 || pixels.DataSet.FindDataElement(new gdcm.Tag(0x0028, 0x1052)));
            if (modality) pixels.Rescale(values);
            bool voi = !job.Bool("disable_voi_lut");
            Window window;
            if (job.Has("window_center"))
                window = new Window { Source = "manual", Center = job.Number("window_center"), Width = job.Number("window_width") };
            else if (job.Bool("normalize")) window = Auto(values);
            else if (voi && pixels.DataSet.FindDataElement(new gdcm.Tag(0x0028, 0x3010)))
                throw new HubException("unsupported_op", "csharp does not apply a VOI LUT Sequence", "set disable_voi_lut, give a window, or use backend python");
            else if (voi && (window = FileWindow(pixels)) != null) { }
            else if (!voi)
            {
                double low = values.Min(), high = values.Max();
                window = new Window { Source = "auto", Center = (low + high) / 2, Width = Math.Max(high - low, 1), Function = "LINEAR_EXACT", Method = "minmax" };
            }
            else window = Auto(values);
            if (window.Function == "LINEAR" && window.Width < 1) window.Function = "LINEAR_EXACT"; // LINEAR needs a width >= 1
            int top = (1 << bits) - 1;
            var samples = new ushort[values.Length];
            for (int i = 0; i < values.Length; i++)
            {
                double y = Math.Round(Apply(window, values[i]) * top, MidpointRounding.ToEven);
                samples[i] = (ushort)Math.Max(0, Math.Min(top, y));
                if (pixels.Photometric == "MONOCHROME1") samples[i] = (ushort)(top - samples[i]);
            }
            metadata["modality_lut"] = rescaled;
            metadata["window"] = new Dictionary<string, object>
            {
                { "source", window.Source }, { "center", window.Center }, { "width", window.Width }, { "function", window.Function }, { "method", window.Method },
            };
            metadata["window_source"] = window.Source;
            return samples;
        }

        /// PS3.3 C.11.2.1.2: LINEAR and LINEAR_EXACT, as a fraction of the output range.
        static double Apply(Window w, double x)
        {
            double c = w.Center, width = w.Width;
            if (w.Function == "LINEAR_EXACT")
            {
                if (x <= c - width / 2) return 0;
                if (x > c + width / 2) return 1;
                return (x - c) / width + 0.5;
            }
            if (x <= c - 0.5 - (width - 1) / 2) return 0;
            if (x > c - 0.5 + (width - 1) / 2) return 1;
            return (x - (c - 0.5)) / (width - 1) + 0.5;
        }

        /// Centre at the median; width = the 5th-95th percentile range widened by 20% (at least 1).
        static Window Auto(double[] values)
        {
            var sorted = (double[])values.Clone();
            Array.Sort(sorted);
            double p5 = Pixels.Percentile(sorted, 5), p95 = Pixels.Percentile(sorted, 95);
            return new Window { Source = "auto", Center = Pixels.Percentile(sorted, 50), Width = Math.Max((p95 - p5) * 1.2, 1), Method = "percentile" };
        }

        static Window FileWindow(PixelArray pixels)
        {
            string center = Elements.TextOf(pixels.DataSet, new gdcm.Tag(0x0028, 0x1050), pixels.Reading);
            string width = Elements.TextOf(pixels.DataSet, new gdcm.Tag(0x0028, 0x1051), pixels.Reading);
            if (center == null || width == null) return null;
            double c = PixelArray.Number(center, double.NaN), w = PixelArray.Number(width, double.NaN);
            if (double.IsNaN(c) || double.IsNaN(w) || w <= 0)
                throw new HubException("decode_error", "the file's window is unusable: Window Center " + center + ", Window Width " + width + " (the width must be > 0)",
                    "give window_center and window_width, or set normalize: true");
            string function = (Elements.TextOf(pixels.DataSet, new gdcm.Tag(0x0028, 0x1056), pixels.Reading) ?? "LINEAR").ToUpperInvariant();
            if (function != "LINEAR" && function != "LINEAR_EXACT")
                throw new HubException("unsupported_op", "csharp applies LINEAR and LINEAR_EXACT windows, not " + function, "give a window, or use backend python");
            return new Window { Source = "file", Center = c, Width = w, Function = function };
        }

        // -- colour ------------------------------------------------------------------------------------
        /// RGB as decoded; YBR_FULL(_422) converted with pydicom's matrix; palette through its LUTs.
        public static ushort[] Colour(PixelArray pixels, double[] values)
        {
            string pi = pixels.Photometric;
            if (pi == "PALETTE COLOR") return Palette(pixels, values);
            if (pixels.Samples != 3 || values.Length != pixels.Rows * pixels.Columns * 3)
                throw new HubException("unsupported_op", "csharp cannot render " + pi + " with " + pixels.Samples + " samples per pixel", "use backend python");
            if (pi == "YBR_FULL" || pi == "YBR_FULL_422") values = YbrToRgb(values);
            else if (pi != "RGB" && pi != "YBR_RCT" && pi != "YBR_ICT") // J2K decoders already undo RCT/ICT
                throw new HubException("unsupported_op", "csharp cannot render photometric interpretation " + pi, "use backend python");
            return Scale(values, pi.StartsWith("YBR_FULL") ? 8 : pixels.BitsStored);
        }

        static double[] YbrToRgb(double[] ybr)
        {
            var rgb = new double[ybr.Length];
            for (int i = 0; i < ybr.Length; i += 3)
            {
                double y = ybr[i], cb = ybr[i + 1] - 128, cr = ybr[i + 2] - 128;
                rgb[i] = Math.Floor(y + 1.402 * cr + 0.5);
                rgb[i + 1] = Math.Floor(y - 0.114 * 1.772 / 0.587 * cb - 0.299 * 1.402 / 0.587 * cr + 0.5);
                rgb[i + 2] = Math.Floor(y + 1.772 * cb + 0.5);
            }
            return rgb.Select(v => Math.Max(0, Math.Min(255, v))).ToArray();
        }

        static ushort[] Scale(double[] values, int depth)
        {
            double factor = 255.0 / ((1L << depth) - 1);
            return values.Select(v => (ushort)Math.Max(0, Math.Min(255, Math.Round(v * factor, MidpointRounding.ToEven)))).ToArray();
        }

        /// Indices through the Red/Green/Blue Palette Color LUTs (descriptor: entries, first mapped, bits).
        static ushort[] Palette(PixelArray pixels, double[] indices)
        {
            gdcm.DataSet ds = pixels.DataSet;
            if (ds.FindDataElement(new gdcm.Tag(0x0028, 0x1221)))
                throw new HubException("unsupported_op", "csharp does not expand segmented palettes", "use backend python");
            var channels = new List<int[]>();
            int depth = 16;
            for (ushort c = 0; c < 3; c++)
            {
                byte[] descriptor = Elements.Raw(ds.GetDataElement(new gdcm.Tag(0x0028, (ushort)(0x1101 + c))));
                byte[] data = Elements.Raw(ds.GetDataElement(new gdcm.Tag(0x0028, (ushort)(0x1201 + c))));
                if (descriptor == null || descriptor.Length < 6 || data == null)
                    throw new HubException("decode_error", "the palette colour lookup tables are missing or incomplete", "the file is not a valid PALETTE COLOR image");
                int entries = BitConverter.ToUInt16(descriptor, 0);
                if (entries == 0) entries = 65536;
                int first = BitConverter.ToUInt16(descriptor, 2);
                depth = BitConverter.ToUInt16(descriptor, 4);
                bool words = data.Length >= 2 * entries;
                var lut = new int[entries + 1];
                lut[0] = first;
                for (int i = 0; i < entries; i++) lut[i + 1] = words ? BitConverter.ToUInt16(data, 2 * i) : data[i];
                channels.Add(lut);
            }
            var rgb = new double[indices.Length * 3];
            for (int i = 0; i < indices.Length; i++)
                for (int c = 0; c < 3; c++)
                {
                    int[] lut = channels[c];
                    int index = Math.Max(0, Math.Min(lut.Length - 2, (int)indices[i] - lut[0]));
                    rgb[3 * i + c] = lut[index + 1];
                }
            return Scale(rgb, depth);
        }
    }
}
