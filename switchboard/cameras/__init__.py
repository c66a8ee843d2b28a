"""Cameras (图像接入): the registry of GB/T 28181 devices with their channels and of RTSP cameras, organised by the
directory's organisations; their live state from the GB/T 28181 platform (conference.gb28181); PTZ."""
