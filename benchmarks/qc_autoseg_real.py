"""QC overlays of the automatic bodies on every real scan bundled in ``sample_data/``.

Usage: ``python benchmarks/qc_autoseg_real.py [--out test_artifacts/autoseg_qc]
[--autoseg-param NAME=NUMBER ...]`` (an :class:`AutosegParameters` field changed, as in
``bench_autoseg.py``, e.g. ``fluid_endplate_fill_mm=8``: the opt-in step's effect on the
real scans)

For each scan (the SCT cervical T1w + T2 pair; the SCT lumbar 3D T2 and the TPTBox T2, both
without a T1) it runs :func:`find_vertebral_bodies`, writes a PNG with three sagittal slices
and one axial row (bodies in colour; SPINEPS's bodies outlined in yellow where they exist)
and prints the bodies' volumes, their levels, the notes and, for the TPTBox T2, the Dice of
each SPINEPS body. Look at the PNGs: the numbers alone do not show a body that grew into the
tissue beside the spine.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from bench_autoseg import ImagesOnly, autoseg_changes

from bmetoolkit.data import datasets
from bmetoolkit.io import load_nifti
from bmetoolkit.spine.autoseg import AutosegParameters, find_vertebral_bodies
from bmetoolkit.spine.autoseg.frame import CanonicalFrame
from bmetoolkit.study import Study

#: SPINEPS subregion ids of the vertebral body (corpus border, corpus) and its endplates.
SPINEPS_BODY_SUBREGIONS = (49, 50, 62)


def spineps_bodies(vertebrae: np.ndarray, subregions: np.ndarray) -> np.ndarray:
    """Instance id of each body voxel of a SPINEPS pair of masks (0 elsewhere)."""
    instance = np.where(vertebrae >= 200, vertebrae - 200, np.where(vertebrae < 100, vertebrae, 0))
    return np.where(np.isin(subregions, SPINEPS_BODY_SUBREGIONS) & (instance > 0), instance, 0)


def dice_per_body(found: np.ndarray, truth: np.ndarray) -> dict[int, float]:
    """Dice of each reference body with the automatic body overlapping it most."""
    out = {}
    for body in (int(v) for v in np.unique(truth[truth > 0])):
        true = truth == body
        ids, counts = np.unique(found[true], return_counts=True)
        counts, ids = counts[ids > 0], ids[ids > 0]
        best = found == ids[np.argmax(counts)] if ids.size else np.zeros_like(true)
        out[body] = round(2 * float((best & true).sum()) / float(best.sum() + true.sum()), 3)
    return out


def overlay(path: Path, image: np.ndarray, bodies: np.ndarray, reference: np.ndarray | None):
    """Three sagittal slices and the mid axial row, canonical arrays (AP, SI, LR)."""
    n = image.shape[2]
    slices = sorted({max(0, n // 2 - n // 4), n // 2, min(n - 1, n // 2 + n // 4)})
    fig, axes = plt.subplots(1, len(slices) + 1, figsize=(5 * (len(slices) + 1), 6))
    shown = np.ma.masked_equal(bodies, 0)
    for ax, k in zip(axes, slices, strict=False):
        ax.imshow(image[:, :, k].T, origin="lower", cmap="gray")
        ax.imshow(shown[:, :, k].T, origin="lower", cmap="tab10", alpha=0.35, vmin=0, vmax=10)
        if reference is not None:
            ax.contour((reference[:, :, k] > 0).T, [0.5], colors="yellow", linewidths=0.7)
        ax.set_title(f"{path.stem}: sagittal slice {k}")
    row = image.shape[1] // 2
    axes[-1].imshow(image[:, row, :].T, origin="lower", cmap="gray", aspect="auto")
    axes[-1].imshow(shown[:, row, :].T, origin="lower", cmap="tab10", alpha=0.35, aspect="auto")
    axes[-1].set_title(f"axial row {row}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=60)
    plt.close(fig)


def report(
    name: str,
    study,
    out: Path,
    reference: np.ndarray | None = None,
    params: AutosegParameters | None = None,
) -> None:
    """Segment (with ``params``, the defaults when None), print and draw one study."""
    result = find_vertebral_bodies(study, params or AutosegParameters())
    frame = CanonicalFrame.of(study.grid)
    found = np.asarray(result.bodies.data)
    volumes = {
        k: round(float((found == k).sum()) * study.grid.voxel_volume_mm3 / 1000, 1)
        for k in result.levels
    }
    print(f"{name}: images {result.provenance['images_used']}, bodies (mL) {volumes}")
    print(f"  levels {result.levels}, {result.provenance['seconds']} s")
    notches = result.provenance["t1_marrow_evidence"].get("si_notches_filled")
    if notches is not None:  # with a T1 (si_notch_mm): voxels the notch closing added
        print(f"  notches along SI filled: {notches} voxels")
    for note in result.notes:
        print(f"  note: {note}")
    if reference is not None:
        print(f"  Dice against SPINEPS bodies: {dice_per_body(found, reference)}")
    image = frame.view(np.asarray(study.fluid.data if study.t1 is None else study.t1.data))
    shown_reference = None if reference is None else frame.view(reference)
    overlay(out / f"{name}.png", image.astype(np.float32), frame.view(found), shown_reference)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("test_artifacts/autoseg_qc"))
    parser.add_argument(
        "--autoseg-param", action="append", default=[], metavar="NAME=NUMBER",
        help="an AutosegParameters field, e.g. fluid_endplate_fill_mm=8",
    )  # fmt: skip
    args = parser.parse_args(argv)
    try:
        params = AutosegParameters(**autoseg_changes(args.autoseg_param))
    except (TypeError, ValueError) as error:
        parser.error(f"--autoseg-param takes NAME=NUMBER with an AutosegParameters field: {error}")
    pair = datasets.cervical_pair()
    cervical = Study.from_images(pair["t1"], t2=pair["t2"])
    report("sct_cervical_t1_t2", cervical, args.out, params=params)
    lumbar = load_nifti(datasets.lumbar_t2())
    report("sct_lumbar_t2", ImagesOnly(None, lumbar, None, lumbar.grid), args.out, params=params)
    paths = datasets.tptbox_t2()
    t2 = load_nifti(paths["t2"])
    reference = spineps_bodies(
        np.asarray(load_nifti(paths["vertebrae"], kind="label").data).astype(np.int32),
        np.asarray(load_nifti(paths["subregions"], kind="label").data),
    )
    report("tptbox_t2", ImagesOnly(None, t2, None, t2.grid), args.out, reference, params)
    print(f"overlays in {args.out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
