"""ipywidgets panels, one module per notebook: `theory` (01), `features` (02), `patching` (03),
`steering` (04), `training` (05). A panel builds controls and calls functions that live elsewhere."""
