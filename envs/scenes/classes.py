"""Semantic class table shared by every scene source, the renderer and the humans.

A face's semantic id is its index in :data:`CLASS_NAMES`. Id 0 (``void``) means unknown
or unlabelled geometry. ``person`` is reserved for the SMPL-X bodies that the humans
module adds to a scene at render time; no scene source emits it.

===  ===========  ==========================================================
id   name         used for
===  ===========  ==========================================================
0    void         unknown / unlabelled
1    floor        walkable floor slabs, ground planes, up-facing floor faces
2    wall         walls (procedural) and names containing "wall"
3    ceiling      ceilings
4    door         doors, door frames
5    window       windows
6    table        tables, desks
7    chair        chairs, stools
8    sofa         sofas, couches
9    bed          beds
10   shelf        book shelves
11   cabinet      cabinets, wardrobes, dressers
12   plant        plants, trees, grass-less vegetation
13   lamp         lamps, lanterns
14   person       virtual humans (added later, never by a scene loader)
15   ground       outdoor terrain (grass, dirt, sand)
16   structure    building parts: columns, roofs, stairs, temples
17   object       other movable objects
===  ===========  ==========================================================
"""

from __future__ import annotations

__all__ = ["CLASS_NAMES", "NUM_CLASSES", "class_id", "class_from_name"]

CLASS_NAMES: tuple[str, ...] = (
    "void",
    "floor",
    "wall",
    "ceiling",
    "door",
    "window",
    "table",
    "chair",
    "sofa",
    "bed",
    "shelf",
    "cabinet",
    "plant",
    "lamp",
    "person",
    "ground",
    "structure",
    "object",
)

NUM_CLASSES: int = len(CLASS_NAMES)

_IDS = {name: i for i, name in enumerate(CLASS_NAMES)}

# Keywords looked for (lower case, as substrings) in mesh, node and material names of
# loaded files; the first class whose keyword matches wins, so specific words come first.
_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("floor", ("floor", "ground_plane", "carpet", "rug")),
    ("ceiling", ("ceiling",)),
    ("wall", ("wall",)),
    ("door", ("door", "gate")),
    ("window", ("window", "glass")),
    ("table", ("table", "desk")),
    ("chair", ("chair", "stool", "seat")),
    ("sofa", ("sofa", "couch")),
    ("bed", ("bed", "mattress")),
    ("shelf", ("shelf", "bookcase")),
    ("cabinet", ("cabinet", "wardrobe", "dresser", "drawer")),
    ("plant", ("plant", "tree", "bush", "flower")),
    ("lamp", ("lamp", "lantern", "light")),
    ("ground", ("grass", "dirt", "terrain", "sand", "soil")),
    ("structure", ("temple", "pagoda", "roof", "stair", "column", "pillar", "arena")),
)


def class_id(name: str) -> int:
    """Semantic id of the class called ``name`` (one of :data:`CLASS_NAMES`).

    Raises:
        ValueError: ``name`` is not a known class; the message lists the valid names.
    """
    try:
        return _IDS[name]
    except KeyError:
        raise ValueError(
            f"unknown semantic class name {name!r}; valid names: {', '.join(CLASS_NAMES)}"
        ) from None


def class_from_name(text: str) -> int:
    """Best-guess semantic id for a mesh/material name from loaded files (0 if no keyword).

    Matching is a case-insensitive substring search over the keyword table above.
    """
    low = text.lower()
    for cls, words in _KEYWORDS:
        if any(w in low for w in words):
            return _IDS[cls]
    return 0
