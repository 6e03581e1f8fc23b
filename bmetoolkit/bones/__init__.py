"""Bone marrow edema in any bone given as a marrow mask (hip, knee, ankle, sacroiliac joints,
shoulder...): masks and names (:mod:`.labels`), each bone's marrow and its depth from the bone
and articular surfaces (:mod:`.geometry`), and the per-bone and per-lesion tables
(:mod:`.tables`). No spine concept (levels, endplates, Modic types) is used here.
"""
