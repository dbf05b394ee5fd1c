"""Checkpoints: a torch file of state dicts and plain values, plus a JSON config beside it.

Both are written atomically (to a temporary name, then ``os.replace``) so an interrupted run never
leaves a half-written checkpoint, and loaded with ``weights_only=True`` (no pickled objects).

Every config records the model's ``"kind"`` (``"vae"``, ``"spade"``, ``"segmenter"``) and whether
the checkpoint is ``"resumable"`` (a trainer's ``<name>_last.pt``, with its optimisers) or final;
every loader names the kind it reads. Whatever is wrong with the file given (missing, a folder,
empty, truncated, not a torch file, no config, a broken config, another kind, weights that do not
fit the network the config describes) is a :class:`CheckpointError`: a ``ValueError`` whose message
is one line naming the file, what it is not, and what to do (the ``cardigan`` command prints it as
``cardigan: <message>``). torch's own text is never passed on: for a file the weights-only
unpickler refuses it suggests ``weights_only=False``, which would run whatever code the file holds.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .runs import atomic_path, write_text_atomic

WRITERS = {
    "vae": "the vae.pt that train_vae wrote (notebook 02, `cardigan train vae`)",
    "spade": "the spade.pt that train_spade wrote (notebook 03, `cardigan train spade`)",
    "segmenter": "the segmenter.pt that train_segmenter wrote (`cardigan train segmenter`, the study)",
}
"""Kind -> the checkpoint to give instead, as the error messages say it."""

PAIR_ADVICE = "copy the .pt and its .json together, or train again"
"""What to do when the weights and the config beside them do not belong together."""


class CheckpointError(ValueError):
    """A file that is not the checkpoint asked for.

    The message is one line: ``<path> <problem>: <advice>``.

    Args:
        path: the ``.pt`` file given.
        problem: what the file is not (``"is empty (0 bytes)"``).
        advice: what to do instead.

    Attributes:
        path, problem, advice: as given.
    """

    def __init__(self, path: str | os.PathLike, problem: str, advice: str) -> None:
        self.path, self.problem, self.advice = Path(path), problem, advice
        super().__init__(f"{path} {problem}: {advice}")

    def __reduce__(self):
        return type(self), (self.path, self.problem, self.advice)


class MissingCheckpointError(CheckpointError, FileNotFoundError):
    """No file at the path given (also a ``FileNotFoundError``, as it was before checkpoints were checked)."""


def advice_for(kind: str | None) -> str:
    """What to give instead of a file that is not a ``kind`` checkpoint.

    Args:
        kind: the kind asked for (None: any).

    Returns:
        ``"give the segmenter.pt that train_segmenter wrote (...)"`` and the like.
    """
    if kind is None:
        return "give a .pt checkpoint the kit wrote, with its .json beside it"
    return f"give {WRITERS.get(kind, f'a {kind} checkpoint the kit wrote')}"


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any], *, config: dict[str, Any], kind: str,
                    resumable: bool = False) -> Path:
    """Write ``state`` to ``path`` and ``config`` (with the kind recorded) to ``path`` with suffix ``.json``.

    Args:
        path: the ``.pt`` file.
        state: state dicts, tensors and plain Python values (weights_only-loadable).
        config: JSON-ready description (model keyword arguments, training parameters).
        kind: what model it holds (``"vae"``, ``"spade"``, ``"segmenter"``); loaders check it.
        resumable: a trainer's ``<name>_last.pt`` (optimisers included, for resuming).

    Returns:
        ``path``.
    """
    path = Path(path)
    if not kind:
        raise ValueError("a checkpoint must record its kind ('vae', 'spade', 'segmenter', ...)")
    config = {**config, "kind": kind, "resumable": bool(resumable)}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
        write_text_atomic(path.with_suffix(".json"), json.dumps(config, indent=1))
    return path


def kind_of(config: dict[str, Any]) -> str | None:
    """The kind of model a checkpoint's config describes.

    Checkpoints written before kinds were recorded are recognised by the structure of their
    config, which each trainer has always written: a generator records its ``"family"`` (or, from
    before the generator contract, SPADE's ``"ngf"`` in ``"model"``); the shape VAE's ``"model"``
    has a ``"latent_dim"``; the U-Net's has ``"channels"`` and ``"num_res_units"`` but no latent size.
    So old run directories still load, and a config of another shape is refused.

    Args:
        config: the JSON config.

    Returns:
        The recorded or recognised kind, or None.
    """
    if config.get("kind"):
        return str(config["kind"])
    if config.get("family"):
        return str(config["family"])
    model = config.get("model")
    if not isinstance(model, dict):
        return None
    if "latent_dim" in model:
        return "vae"
    if "ngf" in model:
        return "spade"
    if {"channels", "num_res_units"} <= set(model):
        return "segmenter"
    return None


def read_config(path: str | os.PathLike, *, kind: str | None = None) -> dict[str, Any]:
    """The JSON config beside a checkpoint, without loading its weights; the file and its kind checked.

    Args:
        path: the ``.pt`` file.
        kind: the kind expected (None: any kind).

    Returns:
        The config.

    Raises:
        MissingCheckpointError: no such file.
        CheckpointError: a folder, an empty file, not a torch file, no config or a broken one,
            a checkpoint of another kind.
    """
    path = Path(path)
    advice = advice_for(kind)
    if not path.exists():
        raise MissingCheckpointError(path, "does not exist", f"train the model first, or {advice}")
    if path.is_dir():
        inside = path / f"{kind}.pt"
        hint = f"did you mean {inside}?" if kind and inside.is_file() else advice
        raise CheckpointError(path, "is a folder, not a checkpoint file", hint)
    try:
        size = path.stat().st_size
        # torch.save writes a zip archive; a truncated one has lost its central directory at the end
        is_zip = size > 0 and zipfile.is_zipfile(path)
    except OSError as err:
        raise CheckpointError(path, f"cannot be read ({err.strerror or type(err).__name__})", advice) from None
    if size == 0:
        raise CheckpointError(path, "is empty (0 bytes), not a checkpoint (an interrupted copy?)", advice)
    if not is_zip:
        raise CheckpointError(path, "is not a torch checkpoint (truncated, damaged or another format)", advice)
    config_path = path.with_suffix(".json")
    if not config_path.is_file():
        raise CheckpointError(path, f"has no config beside it ({config_path.name}: the kit writes both)",
                              f"copy {config_path.name} along with it, or {advice}")
    try:
        config = json.loads(config_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        detail = f"line {err.lineno}: {err.msg}" if isinstance(err, json.JSONDecodeError) else type(err).__name__
        raise CheckpointError(path, f"has a damaged config ({config_path.name} is not JSON, {detail})",
                              f"copy it again from where {path.name} was written, or train again") from None
    if not isinstance(config, dict):
        raise CheckpointError(path, f"has a config that is not a checkpoint's ({config_path.name} holds no settings)",
                              PAIR_ADVICE)
    found = kind_of(config)
    if kind is not None and found != kind:
        what = (f"is a {found} checkpoint, not a {kind} one" if found else
                f"has a config that does not say it is a {kind} checkpoint (no \"kind\", nor a {kind}'s settings)")
        raise CheckpointError(path, what, advice)
    return config


def load_checkpoint(path: str | os.PathLike, *, kind: str | None, map_location: str = "cpu", keys: tuple[str, ...] = (),
                    resumable: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`, checking that it is the kind asked for.

    Args:
        path: the ``.pt`` file.
        kind: the kind expected (``"vae"``, ``"spade"``, ``"segmenter"``); None accepts any kind.
        map_location: device for the tensors.
        keys: entries the state must hold (``("model",)``).
        resumable: require a trainer's resumable checkpoint (``<name>_last.pt``).

    Returns:
        ``(state, config)``.

    Raises:
        MissingCheckpointError: no such file.
        CheckpointError: anything else that makes it not the checkpoint asked for (see :func:`read_config`),
            weights that torch cannot read, or a state without ``keys``.
    """
    path = Path(path)
    config = read_config(path, kind=kind)
    advice = advice_for(kind)
    if resumable and config.get("kind") and not config.get("resumable"):
        raise CheckpointError(path, "is a final checkpoint, not a trainer's resumable <name>_last.pt", advice)
    # torch.load does not check the archive's checksums: bytes damaged in the middle of a tensor
    # would load as wrong weights without a word. Reading them again costs ~0.1 s per 200 MB.
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except Exception as err:  # a damaged archive raises BadZipFile, zlib.error, EOFError, ...
        raise CheckpointError(path, f"is not a torch checkpoint (damaged archive: {type(err).__name__})", advice) from None
    if damaged is not None:
        raise CheckpointError(path, f"is damaged (its part {damaged} fails its checksum)", advice)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (MemoryError, torch.OutOfMemoryError):
        raise  # the file may be fine: the memory is what is short
    except Exception as err:  # bad bytes raise many types (UnpicklingError, RuntimeError, EOFError, KeyError, ...)
        # torch's text is left out on purpose (it suggests weights_only=False); the type says enough
        raise CheckpointError(path, f"is not a checkpoint the kit can read ({type(err).__name__}: damaged, "
                                    "or holds more than weights)", advice) from None
    if not isinstance(state, dict):
        raise CheckpointError(path, f"holds a {type(state).__name__}, not a checkpoint's state", advice)
    missing = [k for k in keys if k not in state]
    if missing:
        raise CheckpointError(path, f"holds no {', '.join(map(repr, missing))} (not a {kind or 'kit'} checkpoint, "
                                    "or written by another version of the kit)", advice)
    return state, config


def load_weights(target, weights: Any, *, path: str | os.PathLike, part: str = "model", optional: tuple[str, ...] = (),
                 advice: str = PAIR_ADVICE) -> None:
    """Load a state dict into a network, optimiser or scheduler; anything that does not fit is one line.

    For a network the names and shapes are compared first, so the message says what differs
    (missing, unexpected, a size mismatch) instead of torch's multi-line report.

    Args:
        target: an ``nn.Module`` (or anything with ``load_state_dict``).
        weights: the state dict from the checkpoint.
        path: the checkpoint (for the message).
        part: which entry of the checkpoint it is (``"model"``, ``"optimizer"``).
        optional: entries of a network that an older checkpoint may lack (they keep their values).
        advice: what to do when the weights do not fit.

    Raises:
        CheckpointError: the weights do not fit ``target``.
    """
    if not isinstance(weights, Mapping):
        raise CheckpointError(path, f"holds a {type(weights).__name__} as its {part!r}, not a state dict", advice)
    if isinstance(target, torch.nn.Module):
        expected = target.state_dict()
        missing = [k for k in expected if k not in weights and k not in optional]
        unexpected = [k for k in weights if k not in expected]
        resized = [(k, list(weights[k].shape), list(v.shape)) for k, v in expected.items()
                   if k in weights and hasattr(v, "shape") and getattr(weights[k], "shape", v.shape) != v.shape]
        differences = []
        if missing:
            differences.append(f"{len(missing)} missing, e.g. {missing[0]!r}")
        if unexpected:
            differences.append(f"{len(unexpected)} unexpected, e.g. {unexpected[0]!r}")
        if resized:
            name, found, wanted = resized[0]
            differences.append(f"{len(resized)} of another size, e.g. {name!r} {found} instead of {wanted}")
        if differences:
            raise CheckpointError(path, f"has {part} weights that do not fit the network its config describes "
                                        f"({'; '.join(differences)})", advice)
    try:
        if isinstance(target, torch.nn.Module):
            target.load_state_dict(weights, strict=False)
        else:
            target.load_state_dict(weights)
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as err:
        raise CheckpointError(path, f"has a {part} state that does not fit ({_first_line(err)})", advice) from None


def build_from_config(build, config: dict[str, Any], *, path: str | os.PathLike, kind: str):
    """The network a checkpoint's config describes: ``build(**config["model"])``, its failures one line.

    Args:
        build: the constructor (``ShapeVAE``, ``build_unet``, ``build_spade``).
        config: the checkpoint's config.
        path: the checkpoint (for the message).
        kind: its kind (for the message).

    Returns:
        What ``build`` returns.

    Raises:
        CheckpointError: no ``"model"`` settings, or settings ``build`` refuses.
    """
    model = config.get("model")
    if not isinstance(model, dict):
        raise CheckpointError(path, f"has a config without the {kind}'s \"model\" settings", PAIR_ADVICE)
    try:
        return build(**model)
    except (TypeError, ValueError) as err:
        raise CheckpointError(path, f"has \"model\" settings that build no {kind} ({_first_line(err)})",
                              PAIR_ADVICE) from None


def _first_line(err: BaseException) -> str:
    """The first line of an exception's text (its type's name when it has none)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
