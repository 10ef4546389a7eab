"""The embedded procedural SMPL-X body: generation-only modules.

Nothing at run time imports these except to build (once, then cached) the procedural
``SMPLX_{NEUTRAL,MALE,FEMALE}.npz`` files that stand in for the licensed ones:

============================  ==============================================================
module                        holds
============================  ==============================================================
:mod:`.generator`             file format, generation of every array, the on-disk cache
:mod:`.implicit_shapes`       round cones and ellipsoids that sculpt the body (its SDF)
:mod:`.meshing`               implicit surface -> closed mesh with SMPL-X's vertex count
:mod:`.anatomy`               anatomical targets that give SMPL-X's vertex ids their places
:mod:`.skinning_weights`      skinning weights and the joint regressor of the surface
:mod:`.shape_space`           shape and expression directions, gender variants
:mod:`.hands`                 the hand pose basis
:mod:`.landmarks`             facial landmarks in SMPL-X's format
============================  ==============================================================
"""
