"""Read W&B offline runs back from their ``run-<id>.wandb`` transaction log (no network, no mocks).

wandb 0.31 writes no summary JSON for offline runs: everything is in the ``.wandb`` file, a
LevelDB-log framed stream of ``wandb.proto.wandb_internal_pb2.Record`` messages:

* a 7-byte file header: ``:W&B``, magic ``0xBEE1`` (uint16 LE), version ``0`` (uint8);
* 32 KiB blocks counted from the start of the file (header included); a block tail shorter than
  a chunk header is zero padding;
* each chunk: a 7-byte header (CRC-32 uint32 LE, length uint16 LE, type uint8: 1 full, 2 first,
  3 middle, 4 last) and its data. The CRC is zlib's CRC-32 of the data seeded with the CRC of
  the type byte (what wandb-core writes; checked against 0.31.0, it is not CRC-32C).

The layout is wandb's internal format, so the reader is pinned: :data:`SUPPORTED_WANDB` is the
range it is known to read, and a file with another header fails loudly instead of misreading.
"""

from __future__ import annotations

import glob
import importlib.metadata
import json
import os
import struct
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

#: wandb versions whose offline file this reader supports: [low, high). Verified on 0.31.0.
SUPPORTED_WANDB = ((0, 22), (0, 40))

HEADER = struct.Struct("<4sHB")
HEADER_IDENT = b":W&B"
HEADER_MAGIC = 0xBEE1
HEADER_VERSION = 0
CHUNK = struct.Struct("<IHB")
BLOCK_SIZE = 32 * 1024
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
_TYPE_CRC = [zlib.crc32(bytes([t])) for t in range(256)]


class WandbFileError(ValueError):
    """The file is not a ``.wandb`` log this reader understands."""


def wandb_version() -> tuple[int, ...] | None:
    """The installed wandb version, read from its metadata (importing wandb is not needed)."""
    try:
        version = importlib.metadata.version("wandb")
    except importlib.metadata.PackageNotFoundError:
        return None
    parts = []
    for piece in version.split(".")[:3]:
        digits = "".join(c for c in piece if c.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def unsupported_reason() -> str | None:
    """Why the installed wandb cannot be read back by this module, or None when it can."""
    version = wandb_version()
    if version is None:
        return "wandb is not installed"
    low, high = SUPPORTED_WANDB
    if not (low <= version[:2] < high):
        shown = ".".join(map(str, version))
        return (
            f"wandb {shown} is outside the range the .wandb reader supports "
            f"({'.'.join(map(str, low))} <= v < {'.'.join(map(str, high))}); update tests/wandb_records.py"
        )
    return None


def iter_payloads(path: str) -> Iterator[bytes]:
    """The serialized records of a ``.wandb`` file, chunks reassembled and CRC-checked."""
    with open(path, "rb") as fh:
        data = fh.read()
    if len(data) < HEADER.size:
        raise WandbFileError(f"{path}: too short for a .wandb header")
    ident, magic, version = HEADER.unpack_from(data)
    if (ident, magic, version) != (HEADER_IDENT, HEADER_MAGIC, HEADER_VERSION):
        raise WandbFileError(f"{path}: unknown header {ident!r} {magic:#x} v{version}")
    pos = HEADER.size
    pending: bytearray | None = None
    while pos < len(data):
        left_in_block = BLOCK_SIZE - pos % BLOCK_SIZE
        if left_in_block < CHUNK.size:
            pos += left_in_block  # padding
            continue
        if pos + CHUNK.size > len(data):
            break  # a torn tail (the writer was killed): what came before is still good
        crc, length, kind = CHUNK.unpack_from(data, pos)
        pos += CHUNK.size
        if kind == 0 and length == 0:
            pos += left_in_block - CHUNK.size  # zero fill to the end of the block
            continue
        chunk = data[pos : pos + length]
        pos += length
        if len(chunk) < length:
            break
        if zlib.crc32(chunk, _TYPE_CRC[kind]) & 0xFFFFFFFF != crc:
            raise WandbFileError(f"{path}: CRC mismatch at offset {pos - length - CHUNK.size}")
        if kind == FULL:
            yield bytes(chunk)
        elif kind == FIRST:
            pending = bytearray(chunk)
        elif kind in (MIDDLE, LAST):
            if pending is None:
                raise WandbFileError(f"{path}: continuation chunk without a first chunk")
            pending += chunk
            if kind == LAST:
                yield bytes(pending)
                pending = None
        else:
            raise WandbFileError(f"{path}: unknown chunk type {kind}")


_PROTO: dict[str, Any] = {}


def _proto(name: str) -> Any:
    """``Record`` and ``MessageToDict``, imported once and kept here.

    ``pytester`` drops modules imported during a test from ``sys.modules``; importing the
    generated protobuf modules a second time would then fail (duplicate descriptors), so the
    first import must be the only one.
    """
    if not _PROTO:
        with warnings.catch_warnings():  # importing wandb adds filters of its own
            from google.protobuf.json_format import MessageToDict
            from wandb.proto import wandb_internal_pb2
        _PROTO.update(Record=wandb_internal_pb2.Record, MessageToDict=MessageToDict)
    return _PROTO[name]


def iter_records(path: str) -> Iterator[Any]:
    """``wandb_internal_pb2.Record`` messages of a ``.wandb`` file, in order."""
    record_type = _proto("Record")
    for payload in iter_payloads(path):
        record = record_type()
        record.ParseFromString(payload)
        yield record


@dataclass
class WandbRun:
    """One offline run as its ``.wandb`` file tells it."""

    dir: str
    id: str = ""
    name: str = ""
    project: str = ""
    entity: str = ""
    group: str = ""
    job_type: str = ""
    notes: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    environment: list[dict[str, Any]] = field(default_factory=list)  # metadata: args, program...
    record_types: list[str] = field(default_factory=list)
    exited: bool = False

    def table(self, key: str) -> dict[str, Any]:
        """The table logged under ``key`` (``{"columns": [...], "data": [[...]]}``) from the run files."""
        ref = self.summary[key]
        assert isinstance(ref, dict) and ref.get("_type") in ("table-file", "table"), ref
        with open(os.path.join(self.dir, "files", ref["path"]), encoding="utf-8") as fh:
            loaded: dict[str, Any] = json.load(fh)
        return loaded

    def media_keys(self, kind: str) -> list[str]:
        """Summary keys holding media of ``kind`` (``table-file``, ``image-file``)."""
        return sorted(k for k, v in self.summary.items() if isinstance(v, dict) and v.get("_type") == kind)

    @property
    def metrics(self) -> dict[str, Any]:
        """Summary entries that are not wandb's own (``_runtime``...) or media."""
        return {k: v for k, v in self.summary.items() if not k.startswith("_") and not isinstance(v, dict)}


def _json(text: str) -> Any:
    return json.loads(text)  # wandb writes Infinity / -Infinity / NaN tokens; json reads them


def _apply(target: dict[str, Any], item: Any) -> None:
    keys = [item.key] if item.key else list(item.nested_key)
    node = target
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = _json(item.value_json)


def _remove(target: dict[str, Any], item: Any) -> None:
    keys = [item.key] if item.key else list(item.nested_key)
    node = target
    for key in keys[:-1]:
        node = node.get(key, {})
    node.pop(keys[-1], None)


def read_run(path: str) -> WandbRun:
    """A run from its directory (``offline-run-*``) or its ``.wandb`` file."""
    message_to_dict = _proto("MessageToDict")
    if os.path.isdir(path):
        files = glob.glob(os.path.join(path, "run-*.wandb"))
        if len(files) != 1:
            raise WandbFileError(f"{path}: expected one run-*.wandb file, found {len(files)}")
        file = files[0]
    else:
        file = path
    run = WandbRun(dir=os.path.dirname(file))
    for record in iter_records(file):
        kind = record.WhichOneof("record_type")
        run.record_types.append(kind or "")
        if kind == "run":
            r = record.run
            run.id, run.project, run.entity = r.run_id, r.project, r.entity
            run.group, run.job_type, run.name, run.notes = r.run_group, r.job_type, r.display_name, r.notes
            run.tags = list(r.tags)
            for item in r.config.update:
                _apply(run.config, item)
        elif kind == "config":
            for item in record.config.update:
                _apply(run.config, item)
            for item in record.config.remove:
                _remove(run.config, item)
        elif kind == "summary":
            for item in record.summary.update:
                _apply(run.summary, item)
            for item in record.summary.remove:
                _remove(run.summary, item)
        elif kind == "history":
            step: dict[str, Any] = {}
            for item in record.history.item:
                _apply(step, item)
            run.history.append(step)
        elif kind == "environment":
            run.environment.append(message_to_dict(record.environment))
        elif kind == "exit":
            run.exited = True
    run.config.pop("_wandb", None)
    return run


def offline_run_dirs(wandb_dir: str) -> list[str]:
    return sorted(glob.glob(os.path.join(wandb_dir, "offline-run-*")))


def read_runs(wandb_dir: str) -> dict[str, WandbRun]:
    """Every offline run under ``wandb_dir`` by run name; a name seen twice is an error."""
    runs: dict[str, WandbRun] = {}
    for directory in offline_run_dirs(wandb_dir):
        run = read_run(directory)
        if run.name in runs:
            raise AssertionError(f"two runs named {run.name!r}: {runs[run.name].dir} and {run.dir}")
        runs[run.name] = run
    return runs


def all_bytes(*roots: str) -> Iterator[tuple[str, bytes]]:
    """Every file under ``roots`` as bytes, ``.wandb`` files also as their reassembled records.

    For secret scans: a string split across a 32 KiB block boundary is whole again in a record.
    """
    for root in roots:
        for dirpath, _dirs, names in os.walk(root):
            for name in names:
                path = os.path.join(dirpath, name)
                if os.path.islink(path):
                    continue
                with open(path, "rb") as fh:
                    yield path, fh.read()
                if name.endswith(".wandb"):
                    for payload in iter_payloads(path):
                        yield f"{path} (record)", payload
