"""The world: scenes, walkability and SDF, human bodies, markers, tasks and envs."""
