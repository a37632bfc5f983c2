import json, sys
sys.path.insert(0, '/tmp/h10')
from mdlm_probe.miners import DETECTORS
cases = [json.loads(l) for f in sys.argv[1:] for l in open(f)] if len(sys.argv) > 1 else __import__('hand').CASES
for c in cases:
    for det, lab in c['label'].items():
        f = DETECTORS[det](c)
        if bool(f) != lab:
            print('MISMATCH', det, 'label', lab, repr(c['text'][:100]), [(x.evidence, x.details) for x in f], c.get('note', ''))
print(len(cases), 'checked')
