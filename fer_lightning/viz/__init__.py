"""Every figure and page, shared by the TensorBoard callbacks and the HTML report."""
