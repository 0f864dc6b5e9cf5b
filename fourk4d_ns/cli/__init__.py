"""One thin module per ``fourk4d-*`` command: argument parsing, a library call, printing."""

import warnings

# nerfstudio 1.1.5 uses torch.jit.script at import, which torch now deprecates: noise for users.
warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated", category=FutureWarning)
