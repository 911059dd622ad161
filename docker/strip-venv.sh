#!/bin/sh
# Finish an image's environment (argument: the venv, /opt/kbt) in its build stage, so that what
# is removed never reaches a layer: drop pip (images install nothing at run time; derived images
# can `python -m ensurepip`) and compile every module to bytecode, since a read-only root
# filesystem lets Python write none at run time.
set -eu
venv=${1:?usage: strip-venv.sh VENV}
site=$(echo "$venv"/lib/python3.*/site-packages)
rm -rf "$venv"/bin/pip "$venv"/bin/pip3* "$site"/pip "$site"/pip-*.dist-info
"$venv"/bin/python -m compileall -q -j 0 "$site" >/dev/null
