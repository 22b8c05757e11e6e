"""Network ops with pynetdicom: echo, store, find, move, get, worklist, and the storage SCP behind
`dicom-hub scp`. One module per service; `_association` holds what they share (connecting,
timeouts, turning refusals into `network_error`), `storage` where received files go."""
