"""The widget's panels: input, PSF, training, run and progress; each a small magicgui Container."""
