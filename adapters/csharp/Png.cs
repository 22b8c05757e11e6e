// Png.cs: a minimal PNG encoder (greyscale or RGB, 8 or 16 bits) over System.IO.Compression:
// IDAT holds a zlib stream = 2-byte header + raw deflate + Adler-32; every chunk ends with a CRC-32.
using System;
using System.IO;
using System.IO.Compression;
using System.Text;

namespace DicomHub
{
    public static class Png
    {
        static readonly uint[] CrcTable = BuildCrcTable();

        /// `samples` holds rows*columns*channels values, row by row, in 0..2^bits-1.
        public static byte[] Encode(int width, int height, int channels, int bits, ushort[] samples)
        {
            int bytesPerSample = bits / 8;
            int stride = width * channels * bytesPerSample;
            var raw = new byte[height * (stride + 1)];
            int pos = 0, index = 0;
            for (int y = 0; y < height; y++)
            {
                raw[pos++] = 0; // filter type 0 (None) for every scanline
                for (int x = 0; x < width * channels; x++)
                {
                    ushort v = samples[index++];
                    if (bytesPerSample == 2) raw[pos++] = (byte)(v >> 8);
                    raw[pos++] = (byte)v;
                }
            }
            var png = new MemoryStream();
            png.Write(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }, 0, 8);
            var header = new byte[13];
            PutBigEndian(header, 0, (uint)width);
            PutBigEndian(header, 4, (uint)height);
            header[8] = (byte)bits;
            header[9] = (byte)(channels == 3 ? 2 : 0); // colour type: 2 truecolour, 0 greyscale
            Chunk(png, "IHDR", header);
            Chunk(png, "IDAT", Zlib(raw));
            Chunk(png, "IEND", new byte[0]);
            return png.ToArray();
        }

        static byte[] Zlib(byte[] data)
        {
            var output = new MemoryStream();
            output.WriteByte(0x78); // CMF: deflate, 32 KiB window
            output.WriteByte(0x9C); // FLG: default compression, (CMF*256 + FLG) % 31 == 0
            using (var deflate = new DeflateStream(output, CompressionLevel.Optimal, true))
                deflate.Write(data, 0, data.Length);
            var adler = new byte[4];
            PutBigEndian(adler, 0, Adler32(data));
            output.Write(adler, 0, 4);
            return output.ToArray();
        }

        static void Chunk(Stream png, string type, byte[] body)
        {
            var length = new byte[4];
            PutBigEndian(length, 0, (uint)body.Length);
            png.Write(length, 0, 4);
            byte[] typeBytes = Encoding.ASCII.GetBytes(type);
            png.Write(typeBytes, 0, 4);
            png.Write(body, 0, body.Length);
            uint crc = 0xFFFFFFFF;
            crc = Crc(crc, typeBytes);
            crc = Crc(crc, body) ^ 0xFFFFFFFF;
            var crcBytes = new byte[4];
            PutBigEndian(crcBytes, 0, crc);
            png.Write(crcBytes, 0, 4);
        }

        static uint Adler32(byte[] data)
        {
            uint a = 1, b = 0;
            foreach (byte d in data)
            {
                a = (a + d) % 65521;
                b = (b + a) % 65521;
            }
            return (b << 16) | a;
        }

        static uint[] BuildCrcTable()
        {
            var table = new uint[256];
            for (uint n = 0; n < 256; n++)
            {
                uint c = n;
                for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
                table[n] = c;
            }
            return table;
        }

        static uint Crc(uint crc, byte[] data)
        {
            foreach (byte d in data) crc = CrcTable[(crc ^ d) & 0xFF] ^ (crc >> 8);
            return crc;
        }

        static void PutBigEndian(byte[] buffer, int offset, uint value)
        {
            buffer[offset] = (byte)(value >> 24);
            buffer[offset + 1] = (byte)(value >> 16);
            buffer[offset + 2] = (byte)(value >> 8);
            buffer[offset + 3] = (byte)value;
        }
    }
}
