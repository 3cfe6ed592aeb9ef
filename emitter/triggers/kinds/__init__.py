"""One module per trigger type, each declaring its `TriggerType` (emitter.triggers.spec).

They import no runner at load: `validate` reads them without starting anything, and each
factory imports its runner module when `emitter run` builds runners.
"""
