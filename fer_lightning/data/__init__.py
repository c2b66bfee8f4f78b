"""Reading faces from every supported source, splitting, augmenting and batching them."""
