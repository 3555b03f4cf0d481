"""The greedy part-affinity-field decoder, one module per step.

The public entry is :mod:`src.evaluate.decoder` (``decode_poses``, ``DecodeParams``). Here:

* :mod:`.reference` -- the plain, loop-based algorithm: the specification the fast path matches
  (the tests' oracle; nothing of the fast path imports it);
* :mod:`.map_ops` -- the reference's upsampling, smoothing and peak test, which both use;
* :mod:`.params` -- ``DecodeParams`` (the callers pass the configuration's values);
* :mod:`.peaks` -- joint peaks of the upsampled, smoothed heatmaps;
* :mod:`.limbs` -- PAF line-integral scores of candidate limbs;
* :mod:`.matching` -- greedy one-to-one matching per limb;
* :mod:`.grouping` -- connections assembled into people;
* :mod:`.operators`, :mod:`.screening` -- the exact-speed machinery behind :mod:`.peaks`;
* :mod:`.timing` -- the optional per-stage clock.
"""
