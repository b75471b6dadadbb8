"""Step time: seconds for one engine step, from a model chosen per GPU, model and layout.

`model.StepTimeModel` is the seam every model implements; `select.select` picks one for a
scenario's `profile:`; `simple`, `roofline` and `table` are the models; `library` reads the
measured profiles; `fitted` the roofline efficiencies fitted on measured GPUs; `scaled` wraps
any model with the model-error factor a Monte Carlo run samples.
"""
