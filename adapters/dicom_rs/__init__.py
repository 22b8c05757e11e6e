"""dicom-rs (Rust) as a backend: dicom-dump, dicom-toimage, dicom-transcode and the SCU tools."""
