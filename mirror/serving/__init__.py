"""The request path: which page or file may be served (the gate), and getting it from the page cache, the store or upstream."""
