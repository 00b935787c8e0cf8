"""The params' defaults, for tests that need a grid, a tempo or a sampler but are not about them: library
functions take every such value from their caller, and the defaults live in rollgen.params alone."""

from __future__ import annotations

from rollgen.models.sampling import Sampler, make_sampler
from rollgen.params import GenerateParams, ImagesParams

IMAGES = ImagesParams()
GENERATE = GenerateParams()
STEPS_PER_QUARTER = IMAGES.steps_per_quarter
GRID = IMAGES.grid
TEMPO_BPM = GENERATE.tempo
SOUNDFONT = GENERATE.soundfont


def sampler_with(mode: str, **settings: float) -> Sampler:
    """`make_sampler(mode, ...)` with generate's params for every setting `settings` leave out, and an
    untempered Bernoulli draw (generate.temperature's default, auto, is chosen by the stage)."""
    defaults = {
        "threshold": GENERATE.threshold,
        "temperature": Sampler.temperature,
        "vanish_proof": GENERATE.vanish_proof,
        "vanish_inc": GENERATE.vanish_inc,
        "max_notes": GENERATE.max_notes,
        "min_notes": GENERATE.min_notes,
    }
    return make_sampler(mode, **(defaults | settings))
