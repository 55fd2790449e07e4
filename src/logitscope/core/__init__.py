"""Pure building blocks: probability math, calibration math, sampler processors, boundary rules, corpus reading."""
