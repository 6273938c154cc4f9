"""The project JSON keeps of each file entry only its upload times; everything else it keeps whole."""

from __future__ import annotations

import json

from mirror.screening.screen import release_upload_times
from mirror.upstream.client import file_upload_times

DOC = {
    "info": {"name": "calm-badger", "summary": "a badger", "project_urls": {"Home": "https://calm.example"}},
    "ownership": {"roles": [{"role": "Owner", "user": "maintainer-one"}]},
    "releases": {
        "1.0": [
            {
                "filename": "calm_badger-1.0-py3-none-any.whl",
                "digests": {"sha256": "ab" * 32, "md5": "cd" * 16},
                "packagetype": "bdist_wheel",
                "size": 1234,
                "url": "https://files.example/calm_badger-1.0-py3-none-any.whl",
                "upload_time": "2024-05-01T10:00:00",
                "upload_time_iso_8601": "2024-05-01T10:00:00.123456Z",
                "yanked": False,
            }
        ],
        "2.0": [],
    },
    "vulnerabilities": [{"id": "PYSEC-0", "aliases": ["CVE-0"], "fixed_in": ["2.0"]}],
}


def test_file_entries_keep_their_upload_times_and_nothing_else_changes() -> None:
    slim = json.loads(json.dumps(DOC), object_hook=file_upload_times)
    (entry,) = slim["releases"]["1.0"]
    assert entry == {"upload_time_iso_8601": "2024-05-01T10:00:00.123456Z", "upload_time": "2024-05-01T10:00:00"}
    assert {k: v for k, v in slim.items() if k != "releases"} == {k: v for k, v in DOC.items() if k != "releases"}
    assert set(slim["releases"]) == {"1.0", "2.0"}
    # What the screening reads of the document is the same either way.
    assert release_upload_times(None, slim) == release_upload_times(None, DOC)
