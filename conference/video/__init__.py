"""Video consultation on Janus: the engine (config and process), the API session, VideoRoom rooms, camera feeds
and recordings."""
