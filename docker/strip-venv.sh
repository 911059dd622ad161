#!/bin/sh
# Finish an image's environment (argument: the venv, /opt/kbt) in its build stage, so that what
# is removed never reaches a layer: drop pip (images install nothing at run time; derived images
# can `python -m ensurepip`) and compile every module to bytecode, since a read-only root
# filesystem lets Python write none at run time.
set -eu
venv=${1:?usage: strip-venv.sh VENV}
site=$(echo "$venv"/lib/python3.*/site-packages)
rm -rf "$venv"/bin/pip "$venv"/bin/pip3* "$site"/pip "$site"/pip-*.dist-info
# A few packages ship .py files that are not Python 3 modules (templates, test data); pip skips
# them when it compiles, and so does this: their errors are listed, the build goes on.
"$venv"/bin/python -m compileall -q -j 0 "$site" | grep '^\*\*\* Error compiling' || true
