"""PS3.15 Annex E as data and decisions, shared by the Python engine and the toolkit plans.

- `profile`: Table E.1-1 (`contract/data/ps3.15-annex-e-2024b.tsv`) as data: the action per tag.
- `iods`: what each IOD of PS3.3 defines and with which type (`contract/data/ps3.3-iods-*.bin.gz`).
- `rules`: one decision per element from both (the table's action, or removal of what the IOD does
  not need), and the SOP classes whose pixels usually show identity.
- `dummies`: dummy values for action D, and the dummy items of D sequences.
- `pseudonyms`: keyed HMAC-SHA-256 identifiers, `2.25.` UIDs and per-patient date offsets;
  `keys`: where the key comes from; `side_files`: where the key and mapping files may live.
"""
