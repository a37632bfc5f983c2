from mdlm_probe.cli import entry

entry()
