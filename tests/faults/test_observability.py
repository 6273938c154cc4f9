"""/metrics and the JSON access log, read the way Prometheus and a log pipeline read them."""

from __future__ import annotations

import json
import logging
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from mirror.web.accesslog import LOGGER_NAME
from tests.faults.checks import file_url, get_page
from tests.faults.serving import ServerProcess, write_config
from tests.support.publish import publish


def scrape(base_url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = requests.get(base_url + "metrics", timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_requests_cache_upstream_decisions_and_queue(mirror, index_server, tmp_path) -> None:
    registered = publish(index_server, tmp_path, "quiet-otter")[0]
    publish(index_server, tmp_path, "reqeusts")  # a typosquat: quarantined for review
    before = scrape(mirror.url)
    url = file_url(mirror.url, "quiet-otter", get_page(mirror.url, "quiet-otter").json()["files"][0])
    assert get_page(mirror.url, "reqeusts").status_code == 403
    first = requests.get(url, timeout=30)
    second = requests.get(url, timeout=30)
    assert first.content == second.content
    requests.get(mirror.url + "no/such/route/for-anyone", timeout=30)
    after = scrape(mirror.url)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    route = "/files/{sha256}/{filename}"
    assert delta("indexguard_http_requests_total", route=route, method="GET", status="200") == 2
    assert delta("indexguard_http_requests_total", route="/simple/{name}/", method="GET", status="403") == 1
    assert delta("indexguard_http_requests_total", route="<unmatched>", method="GET", status="404") == 1
    assert not any("for-anyone" in str(key) for key in after)  # raw paths never become labels
    assert delta("indexguard_bytes_served_total", route=route) == 2 * registered.size
    assert delta("indexguard_cache_requests_total", kind="file", result="miss") == 1
    assert delta("indexguard_cache_requests_total", kind="file", result="hit") == 1
    assert delta("indexguard_cache_requests_total", kind="page", result="miss") >= 2
    assert delta("indexguard_upstream_request_duration_seconds_count", kind="page") >= 2
    assert delta("indexguard_upstream_request_duration_seconds_count", kind="json") >= 2
    assert delta("indexguard_upstream_request_duration_seconds_count", kind="file") == 1
    assert delta("indexguard_screening_decisions_total", action="allow") == 1
    assert delta("indexguard_screening_decisions_total", action="review") == 1
    assert delta("indexguard_screening_findings_total", detector="typosquat", action="review") >= 1
    assert value(after, "indexguard_review_queue_length", kind="project") == 1
    assert ("indexguard_audit_duration_seconds_count", ()) in after


def test_upstream_errors_are_counted(mirror, index_server, tmp_path) -> None:
    registered = publish(index_server, tmp_path, "quiet-otter")[0]
    url = file_url(mirror.url, "quiet-otter", get_page(mirror.url, "quiet-otter").json()["files"][0])
    before = scrape(mirror.url)
    with index_server.fault(registered.filename, "status", status=503):
        assert requests.get(url, timeout=30).status_code == 502
    after = scrape(mirror.url)
    errors = "indexguard_upstream_errors_total"
    assert value(after, errors, kind="file", reason="UpstreamError") - value(
        before, errors, kind="file", reason="UpstreamError") == 1


def test_json_access_log_has_no_secrets(start_mirror, index_server, tmp_path) -> None:
    mirror = start_mirror(server={"access_log": "json"})
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    handler = Keep()
    logging.getLogger(LOGGER_NAME).addHandler(handler)
    try:
        publish(index_server, tmp_path, "quiet-otter")
        requests.get(
            mirror.url + "simple/quiet-otter/?api_token=sekrit-one&page=1",
            headers={"Authorization": "Bearer sekrit-two", "User-Agent": "pip/24.0", "Cookie": "s=sekrit-three"},
            timeout=30,
        )
        # The line is written once the response is sent, which can be after the client has it.
        deadline = time.monotonic() + 30
        while not any("/simple/quiet-otter/" in line for line in records) and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        logging.getLogger(LOGGER_NAME).removeHandler(handler)
    entries = [json.loads(line) for line in records]
    page = [e for e in entries if e["route"] == "/simple/{name}/"]
    assert page and page[0]["status"] == 200 and page[0]["user_agent"] == "pip/24.0"
    assert page[0]["path"] == "/simple/quiet-otter/?api_token=***&page=1"
    assert page[0]["bytes"] > 0 and page[0]["method"] == "GET"
    assert "sekrit" not in "\n".join(records)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_two_workers_report_one_sum_in_multiprocess_mode(index_server, database_url, tmp_path) -> None:
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    config = write_config(tmp_path / "mirror.toml", {
        "server": {"host": "127.0.0.1", "workers": 2, "access_log": "json"},
        "database": {"url": database_url},
        "storage": {"path": str(tmp_path / "storage")},
        "upstream": {"url": index_server.simple_url},
    })
    server = ServerProcess(config, tmp_path / "server.log", env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)})
    with server:
        session = requests.Session()
        for _ in range(40):  # new connections land on both workers
            assert requests.get(server.url + "healthz?token=sekrit", headers={"Authorization": "Basic sekrit"},
                                timeout=30).status_code == 200
        samples = scrape(server.url)
        samples_again = scrape(server.url)
        session.close()
    key = dict(route="/healthz", method="GET", status="200")
    assert value(samples, "indexguard_http_requests_total", **key) == 40
    assert value(samples_again, "indexguard_http_requests_total", **key) == 40
    assert len(list(metrics_dir.glob("counter_*.db"))) >= 2  # really two processes writing
    log = server.output()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert sum(1 for entry in lines if entry["route"] == "/healthz") >= 40
    assert "sekrit" not in log
