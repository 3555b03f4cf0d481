"""Decoder parameters, passed in by the callers.

No literals and no file reading here: the values come from the configuration the caller holds
(``DecodeParams.from_config(cfg)``; default_config.yaml is their one source of defaults).
"""
import dataclasses
from dataclasses import dataclass, fields

from src.config_checks import ConfigError


@dataclass(frozen=True)
class DecodeParams:
    """Decoder parameters, named like the keys of default_config.yaml (the reference's names).

    The fields have no defaults: :meth:`from_config` gives those of a configuration and
    :meth:`replace` a copy with some changed.

    Attributes:
        gaussian_sigma: sigma, in input pixels, of the Gaussian that smooths the upsampled
            heatmaps (> 0).
        heatmap_peak_thresh: a peak's smoothed heatmap value must exceed this.
        n_integ_points: sample points of a limb's PAF line integral (>= 2).
        n_integ_points_thresh: a limb needs more than this many sample points whose inner
            product exceeds ``inner_product_thresh``.
        inner_product_thresh: see ``n_integ_points_thresh``.
        limb_length_ratio, length_penalty_value: the distance prior added to a limb's mean
            inner product, ``min(limb_length_ratio * input_width / length - length_penalty_value,
            0)`` (lengths in input pixels).
        n_subset_limbs_thresh: a person is kept with at least this many joints ...
        subset_score_thresh: ... and a score per joint of at least this.
    """

    gaussian_sigma: float
    heatmap_peak_thresh: float
    n_integ_points: int
    n_integ_points_thresh: int
    inner_product_thresh: float
    limb_length_ratio: float
    length_penalty_value: float
    n_subset_limbs_thresh: int
    subset_score_thresh: float

    def __post_init__(self):
        if int(self.n_integ_points) < 2:
            raise ValueError(f"n_integ_points must be >= 2, got {self.n_integ_points}")
        if float(self.gaussian_sigma) <= 0:
            raise ValueError(f"gaussian_sigma must be > 0, got {self.gaussian_sigma}")

    @classmethod
    def from_config(cls, cfg):
        """Build from any object with one attribute per field (a :class:`src.config.Config`),
        each converted to the field's type; other attributes are ignored.

        Raises:
            ConfigError: naming the fields ``cfg`` lacks.
        """
        missing = [field.name for field in fields(cls) if not hasattr(cfg, field.name)]
        if missing:
            raise ConfigError(f"decoder parameters missing from the configuration: "
                              f"{', '.join(missing)}")
        return cls(**{field.name: field.type(getattr(cfg, field.name)) for field in fields(cls)})

    def replace(self, **changes):
        """A copy with some fields changed (validated like a new instance)."""
        return dataclasses.replace(self, **changes)

