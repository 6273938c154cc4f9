"""The Simple Repository API wire formats (PEP 503, 691, 658, 700, 714, 740, 792) and the JSON API, pure: parse, render, negotiate."""
