"""Tables, plots and HTML/Markdown reports."""
