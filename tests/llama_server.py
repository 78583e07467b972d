"""llama-cpp-python's OpenAI-compatible server, loading its model with the parameters the runtime
chooses for this CPU (`runtime.engines.llama_params`), for the teacher tests:

    python -m tests.llama_server --model PATH --host 127.0.0.1 --port N ...   (the server's own options)
"""

import runpy
import sys

from runtime.engines.llama_params import chosen_defaults

if __name__ == "__main__":
    sys.argv[0] = "llama_cpp.server"
    with chosen_defaults():  # held for the server's lifetime: it loads its model when it starts
        runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
