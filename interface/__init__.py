"""The `dicom-hub` command line: a thin shell over `dicom_hub.adapters.dispatch`."""
