"""Training scripts and notebooks, read as source code: the rules before anything is trained.

:mod:`.source` finds and reads ``.py`` files and notebook code cells, :mod:`.interp` follows the
code with :mod:`ast` (never importing or running it) to the models it builds, compiles and fits,
:mod:`.family` decides which Keras the code runs under, :mod:`.edits` writes a finding's fix as
code for its line, and :mod:`.check` judges each model with the core rule catalogue. Standard
library and :mod:`lossaudit.core` only.
"""
