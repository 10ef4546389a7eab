"""``BodyModel``: SMPL-X bodies from licensed files or from the embedded procedural body.

Which files are used, in order:

1. ``model_dir=`` given: ``SMPLX_{GENDER}.npz`` (or ``.pkl``) from that folder;
2. environment variable ``EGOSIM_SMPLX_DIR`` set: the same, from that folder;
3. otherwise the procedural body (:mod:`.procedural`), generated once and cached.

A configured folder without the file is an error that names the folder and the expected file
names. A configured file is checked before use (:func:`check_model_file`: readable, the
arrays smplx reads present, SMPL-X's sizes, finite numbers, face and landmark indices in
range); a bad one is a :class:`ModelFileError` naming the file and what is wrong. A user's
files are never changed or deleted. The procedural files are checked (and regenerated when
bad) by :func:`~.procedural.generator.procedural_model_path`. All outputs are in the
canonical SMPL-X body frame (metres, ``+x`` left, ``+y`` up, ``+z`` forward); see
:mod:`.world_frame` for the z-up world.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from egosim.envs.humans.model_files import GENDERS, model_filename
from egosim.envs.humans.procedural.generator import procedural_model_path
from egosim.envs.humans.subset_skinning import SparseLBS, SparseOutput

from .marker_set import MARKER_VERTEX_IDS

__all__ = ["BodyModel", "MarkerOutput", "ModelFileError", "check_model_file",
           "resolve_model_file", "SMPLX_DIR_ENV"]

#: Environment variable naming a folder with licensed SMPL-X files.
SMPLX_DIR_ENV = "EGOSIM_SMPLX_DIR"

_NUM_BODY_JOINTS = 21
_NUM_VERTICES = 10475
_NUM_JOINTS = 55
_NUM_POSE_BASIS = (_NUM_JOINTS - 1) * 9


class ModelFileError(ValueError):
    """A configured SMPL-X model file is unreadable or not a usable SMPL-X file."""


def _read_model_arrays(path: Path, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The arrays ``names`` (those present) of an SMPL-X ``.npz`` or ``.pkl`` file.

    Raises:
        ValueError: the file cannot be read (the message says why).
    """
    if path.suffix == ".npz":
        if not zipfile.is_zipfile(path):
            raise ValueError("it is not an .npz archive (not a zip file: truncated, "
                             "overwritten or another format?)")
        out = {}
        try:
            with np.load(path, allow_pickle=False) as data:
                for name in names:
                    if name in data.files:
                        out[name] = data[name]
        except ValueError as exc:
            raise ValueError(f"an array is stored as pickled objects, not numbers ({exc})"
                             ) from None
        except Exception as exc:  # damaged archives raise many types
            raise ValueError(f"it is unreadable ({type(exc).__name__}: {exc})") from None
        return out
    try:
        with open(path, "rb") as fh:
            data = pickle.load(fh, encoding="latin1")
    except Exception as exc:  # garbage pickles raise many types
        raise ValueError(f"it is not a readable pickle ({type(exc).__name__}: {exc})"
                         ) from None
    if not isinstance(data, dict):
        raise ValueError(f"it holds a {type(data).__name__}, not a dict of arrays")
    out = {}
    for name in names:
        if name in data:
            value = data[name]
            value = value.toarray() if hasattr(value, "toarray") else value  # scipy sparse
            try:
                out[name] = np.asarray(value)
            except Exception as exc:
                raise ValueError(f"array {name!r} cannot be read ({exc})") from None
    return out


def _model_file_problem(path: Path, use_face_contour: bool, num_pca_comps: int) -> str | None:
    """What makes ``path`` unusable as an SMPL-X file for ``smplx.SMPLX``, or None."""
    required = ("v_template", "f", "J_regressor", "weights", "kintree_table", "shapedirs",
                "posedirs", "hands_componentsl", "hands_componentsr", "hands_meanl",
                "hands_meanr", "lmk_faces_idx", "lmk_bary_coords")
    contour = ("dynamic_lmk_faces_idx", "dynamic_lmk_bary_coords")
    try:
        a = _read_model_arrays(path, required + contour)
    except ValueError as exc:
        return str(exc)
    missing = [k for k in required + (contour if use_face_contour else ()) if k not in a]
    if missing:
        return f"it lacks the array(s) {', '.join(missing)} (not an SMPL-X model file?)"
    for name, arr in a.items():
        if arr.dtype.kind not in "biuf":
            return f"array {name!r} has dtype {arr.dtype}, not numbers"
    v, f = a["v_template"], a["f"]
    expect = {
        "v_template": (_NUM_VERTICES, 3), "J_regressor": (_NUM_JOINTS, _NUM_VERTICES),
        "weights": (_NUM_VERTICES, _NUM_JOINTS), "kintree_table": (2, _NUM_JOINTS),
        "hands_meanl": (45,), "hands_meanr": (45,),
    }
    if v.ndim != 2 or v.shape[1] != 3:
        return f"v_template has shape {v.shape}, expected ({_NUM_VERTICES}, 3)"
    if v.shape[0] != _NUM_VERTICES:
        return (f"it has {v.shape[0]} template vertices; SMPL-X has {_NUM_VERTICES} (an SMPL "
                "or SMPL-H file?)")
    for name, shape in expect.items():
        if a[name].shape != shape:
            return f"array {name!r} has shape {a[name].shape}, expected {shape}"
    sd = a["shapedirs"]
    if sd.ndim != 3 or sd.shape[:2] != (_NUM_VERTICES, 3) or sd.shape[2] < 20:
        return f"shapedirs has shape {sd.shape}, expected ({_NUM_VERTICES}, 3, >= 20)"
    pd = a["posedirs"]
    if pd.shape[-1] != _NUM_POSE_BASIS or pd.size != _NUM_VERTICES * 3 * _NUM_POSE_BASIS:
        return f"posedirs has shape {pd.shape}, expected ({_NUM_VERTICES}, 3, {_NUM_POSE_BASIS})"
    for side in "lr":
        hc = a[f"hands_components{side}"]
        if hc.ndim != 2 or hc.shape[1] != 45 or hc.shape[0] < num_pca_comps:
            return (f"hands_components{side} has shape {hc.shape}, expected (>= "
                    f"{num_pca_comps}, 45)")
    if f.ndim != 2 or f.shape[1] != 3 or f.dtype.kind not in "iu":
        return f"faces f have shape {f.shape} and dtype {f.dtype}, expected (F, 3) integers"
    if f.size and (f.min() < 0 or f.max() >= _NUM_VERTICES):
        return f"faces f reference vertex {int(f.max())}, but there are {_NUM_VERTICES}"
    lf, lb = a["lmk_faces_idx"], a["lmk_bary_coords"]
    if lf.ndim != 1 or lb.shape != (lf.shape[0], 3):
        return f"landmarks: lmk_faces_idx {lf.shape} and lmk_bary_coords {lb.shape} disagree"
    if lf.size and (lf.min() < 0 or lf.max() >= len(f)):
        return f"lmk_faces_idx references face {int(lf.max())}, but there are {len(f)}"
    if use_face_contour:
        df, db = a["dynamic_lmk_faces_idx"], a["dynamic_lmk_bary_coords"]
        if df.ndim != 2 or db.shape != (*df.shape, 3):
            return (f"contour landmarks: dynamic_lmk_faces_idx {df.shape} and "
                    f"dynamic_lmk_bary_coords {db.shape} disagree")
        if df.size and (df.min() < 0 or df.max() >= len(f)):
            return f"dynamic_lmk_faces_idx references face {int(df.max())} of {len(f)}"
    for name, arr in a.items():
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            return f"array {name!r} contains NaN or inf"
    return None


#: (path, inode, size, mtime, contour, pca comps) of user files found good in this process.
_CHECKED: set[tuple[Path, int, int, int, bool, int]] = set()


def check_model_file(path: str | os.PathLike, use_face_contour: bool = False,
                     num_pca_comps: int = 6) -> Path:
    """Check that ``path`` is a usable SMPL-X model file (``.npz`` or ``.pkl``).

    Read only the arrays smplx uses; check SMPL-X's sizes (10,475 vertices, 55 joints, 486
    pose directions, >= 20 shape + expression directions, 45-dim hand bases), finite numbers
    and indices in range. The file is never modified. Good results are remembered per file
    version.

    Raises:
        ModelFileError: the file is unreadable or unusable; names the file and the problem.
    """
    p = Path(path)
    st = p.stat()
    memo = (p, st.st_ino, st.st_size, st.st_mtime_ns, bool(use_face_contour),
            int(num_pca_comps))
    if memo in _CHECKED:
        return p
    problem = _model_file_problem(p, use_face_contour, int(num_pca_comps))
    if problem is not None:
        raise ModelFileError(
            f"SMPL-X model file {p} cannot be used: {problem}. Replace it with the licensed "
            f"file from https://smpl-x.is.tue.mpg.de, or unset {SMPLX_DIR_ENV} (and "
            "model_dir) to use the procedural body.")
    _CHECKED.add(memo)
    return p


def resolve_model_file(gender: str = "neutral", model_dir: str | os.PathLike | None = None
                       ) -> tuple[Path, str]:
    """The SMPL-X file to load for ``gender`` and where it comes from.

    Args:
        gender: ``"neutral"``, ``"male"`` or ``"female"``.
        model_dir: folder with ``SMPLX_{GENDER}.npz``/``.pkl``; ``None`` falls back to
            ``$EGOSIM_SMPLX_DIR``, then to the procedural body.

    Returns:
        ``(path, source)`` with ``source`` one of ``"model_dir"``, ``"env"``,
        ``"procedural"``.

    Raises:
        ValueError: unknown gender.
        FileNotFoundError: a configured folder lacks the file (names folder and files).
    """
    if gender not in GENDERS:
        raise ValueError(f"gender must be one of {', '.join(GENDERS)}; got {gender!r}")
    source = "model_dir"
    if model_dir is None and os.environ.get(SMPLX_DIR_ENV):
        model_dir, source = os.environ[SMPLX_DIR_ENV], "env"
    if model_dir is None:
        return procedural_model_path(gender), "procedural"
    folder = Path(model_dir).expanduser()
    stem = Path(model_filename(gender)).stem
    for ext in (".npz", ".pkl"):
        if (folder / (stem + ext)).is_file():
            return folder / (stem + ext), source
    origin = f" (from ${SMPLX_DIR_ENV})" if source == "env" else ""
    expected = ", ".join(model_filename(g) for g in GENDERS)
    raise FileNotFoundError(
        f"SMPL-X model file {stem}.npz (or {stem}.pkl) not found in folder {folder}{origin}. "
        f"The folder should hold the licensed SMPL-X files: {expected} "
        f"(from https://smpl-x.is.tue.mpg.de); unset it to use the procedural body."
    )


MarkerOutput = SparseOutput


class BodyModel(torch.nn.Module):
    """A batched SMPL-X body (wraps ``smplx.SMPLX``).

    ``BodyModel()`` is the procedural neutral body. Calling the model returns smplx's
    ``SMPLXOutput`` (``vertices (B, 10475, 3)``, ``joints (B, 127, 3)`` — 55 joints, 21
    extra vertex joints, 51 face landmarks (+17 contour with ``use_face_contour``) — in
    metres, body frame, ``transl`` added).

    Args:
        gender: ``"neutral"``, ``"male"`` or ``"female"``.
        model_dir: folder with licensed ``SMPLX_*.npz`` files (see :func:`resolve_model_file`).
        batch_size: batch size used when a call passes no tensor at all.
        num_betas: shape coefficients used (the procedural body has 10).
        num_expression_coeffs: expression coefficients used (the procedural body has 10).
        use_pca: hand poses as PCA coefficients (else 45 axis-angles per hand).
        num_pca_comps: number of hand PCA coefficients.
        flat_hand_mean: if False, smplx adds the relaxed mean hand pose.
        use_face_contour: add the 17 jaw-contour landmarks to ``joints``.
        dtype: float dtype of the model.
    """

    def __init__(self, gender: str = "neutral", model_dir: str | os.PathLike | None = None,
                 batch_size: int = 1, num_betas: int = 10, num_expression_coeffs: int = 10,
                 use_pca: bool = True, num_pca_comps: int = 6, flat_hand_mean: bool = False,
                 use_face_contour: bool = False, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        import smplx

        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int; got {batch_size!r}")
        if not 1 <= int(num_pca_comps) <= 45:
            raise ValueError(f"num_pca_comps must be in 1..45; got {num_pca_comps!r}")
        path, source = resolve_model_file(gender, model_dir)
        if source != "procedural":
            check_model_file(path, use_face_contour, num_pca_comps if use_pca else 0)
        self.gender = gender
        self.model_path = path
        self.source = source
        self.batch_size = batch_size
        # smplx prints a warning for 10+10-component files; keep stdout clean
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                self.smplx = smplx.SMPLX(
                    model_path=str(path), ext=path.suffix[1:], gender=gender,
                    batch_size=batch_size, num_betas=num_betas,
                    num_expression_coeffs=num_expression_coeffs, use_pca=use_pca,
                    num_pca_comps=num_pca_comps, flat_hand_mean=flat_hand_mean,
                    use_face_contour=use_face_contour, dtype=dtype,
                )
        except Exception as exc:  # a file that passed the checks but smplx still refuses
            raise ModelFileError(f"SMPL-X model file {path} could not be loaded by smplx: "
                                 f"{type(exc).__name__}: {exc}") from exc
        self.dtype = dtype
        self._widths = {
            "betas": self.smplx.num_betas,
            "expression": self.smplx.num_expression_coeffs,
            "global_orient": 3,
            "body_pose": 3 * _NUM_BODY_JOINTS,
            "left_hand_pose": num_pca_comps if use_pca else 45,
            "right_hand_pose": num_pca_comps if use_pca else 45,
            "jaw_pose": 3,
            "leye_pose": 3,
            "reye_pose": 3,
            "transl": 3,
        }
        self._markers: SparseLBS | None = None

    # -- properties ---------------------------------------------------------------------
    @property
    def faces(self) -> np.ndarray:
        """Triangles ``(F, 3)`` int64 (vertex indices)."""
        return np.asarray(self.smplx.faces, dtype=np.int64)

    @property
    def num_betas(self) -> int:
        """Number of shape coefficients accepted in ``betas``."""
        return int(self.smplx.num_betas)

    @property
    def num_expression_coeffs(self) -> int:
        """Number of expression coefficients accepted in ``expression``."""
        return int(self.smplx.num_expression_coeffs)

    @property
    def lbs_weights(self) -> np.ndarray:
        """Skinning weights ``(10475, 55)`` as numpy."""
        return self.smplx.lbs_weights.detach().cpu().numpy()

    def parameter_widths(self) -> dict[str, int]:
        """Expected width of each input (``name -> n`` for a ``(B, n)`` tensor)."""
        return dict(self._widths)

    # -- inputs -------------------------------------------------------------------------
    def _inputs(self, params: dict[str, Any]) -> tuple[int, dict[str, torch.Tensor]]:
        unknown = set(params) - set(self._widths)
        if unknown:
            raise TypeError(f"unknown body parameter(s) {sorted(unknown)}; "
                            f"allowed: {', '.join(self._widths)}")
        device = self.smplx.v_template.device
        tensors: dict[str, torch.Tensor] = {}
        batch = None
        for name, value in params.items():
            if value is None:
                continue
            t = torch.as_tensor(value, dtype=self.dtype, device=device)
            n = self._widths[name]
            if t.ndim == 1 and t.shape[0] == n:
                t = t[None]
            elif name == "body_pose" and t.ndim == 3 and tuple(t.shape[1:]) == (21, 3):
                t = t.reshape(t.shape[0], -1)
            if t.ndim != 2 or t.shape[1] != n:
                raise ValueError(f"{name} must have shape (B, {n}); got {tuple(t.shape)}")
            if batch is None:
                batch = t.shape[0]
            elif t.shape[0] != batch:
                raise ValueError(f"{name} has batch size {t.shape[0]} but other inputs have "
                                 f"{batch}; all inputs must share the batch size")
            tensors[name] = t
        batch = self.batch_size if batch is None else batch
        if batch < 1:
            raise ValueError("batch size must be at least 1")
        for name, n in self._widths.items():
            if name not in tensors:
                tensors[name] = torch.zeros(batch, n, dtype=self.dtype, device=device)
        return batch, tensors

    def forward(self, betas: Any = None, global_orient: Any = None, body_pose: Any = None,
                left_hand_pose: Any = None, right_hand_pose: Any = None, transl: Any = None,
                expression: Any = None, jaw_pose: Any = None, leye_pose: Any = None,
                reye_pose: Any = None, return_verts: bool = True,
                return_full_pose: bool = False) -> Any:
        """Pose bodies; every input is ``(B, n)`` (see :meth:`parameter_widths`), optional.

        Axis-angles in radians (``body_pose`` may also be ``(B, 21, 3)``), ``transl`` in
        metres; missing inputs are zeros. Returns smplx's ``SMPLXOutput``.

        Raises:
            ValueError: an input has the wrong shape or the batch sizes disagree.
        """
        batch, t = self._inputs(dict(
            betas=betas, global_orient=global_orient, body_pose=body_pose,
            left_hand_pose=left_hand_pose, right_hand_pose=right_hand_pose, transl=transl,
            expression=expression, jaw_pose=jaw_pose, leye_pose=leye_pose, reye_pose=reye_pose,
        ))
        # smplx repeats its landmark buffers by ``self.batch_size``: match the call's batch
        self.smplx.batch_size = batch
        return self.smplx(**t, return_verts=return_verts, return_full_pose=return_full_pose)

    # -- fast paths ---------------------------------------------------------------------
    def _full_pose(self, t: dict[str, torch.Tensor]) -> torch.Tensor:
        m = self.smplx
        lh, rh = t["left_hand_pose"], t["right_hand_pose"]
        if m.use_pca:
            lh = lh @ m.left_hand_components
            rh = rh @ m.right_hand_components
        pose = torch.cat([t["global_orient"], t["body_pose"], t["jaw_pose"], t["leye_pose"],
                          t["reye_pose"], lh, rh], dim=1)
        return pose + m.pose_mean

    def vertices_subset(self, vertex_ids: Any, sparse: SparseLBS | None = None,
                        **params: Any) -> SparseOutput:
        """Pose only ``vertex_ids`` ``(K,)`` (same inputs as :meth:`forward`).

        Returns :class:`SparseOutput` with ``vertices (B, K, 3)`` and ``joints (B, 55, 3)``,
        equal to ``forward(...).vertices[:, vertex_ids]`` and ``.joints[:, :55]``.
        """
        _, t = self._inputs(params)
        lbs = sparse if sparse is not None else SparseLBS(self.smplx, np.asarray(vertex_ids))
        lbs = lbs.to(self.smplx.v_template.device)
        shape = torch.cat([t["betas"], t["expression"]], dim=1)
        return lbs(self._full_pose(t), shape, t["transl"])

    def markers_only(self, **params: Any) -> SparseOutput:
        """The 67 SSM2 markers without the full mesh (same inputs as :meth:`forward`).

        Returns :class:`SparseOutput`: ``vertices`` are the markers ``(B, 67, 3)`` in
        :data:`~egosim.envs.humans.marker_set.MARKER_NAMES` order, ``joints`` ``(B, 55, 3)``.
        On one CPU thread about 10x faster than :meth:`forward` at batch 1 and 50-75x at
        batch 64 (see ``benchmarks/bench_body.py``).
        """
        if self._markers is None:
            self._markers = SparseLBS(self.smplx, MARKER_VERTEX_IDS)
        return self.vertices_subset(MARKER_VERTEX_IDS, sparse=self._markers, **params)
