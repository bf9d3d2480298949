"""Record and replay: robomem's topics in rosbag2 MCAP bags (``bag``: no ROS needed), the recorder node
(``recorder``), rebuilding a memory from a bag (``replay``) and the commands (``cli``)."""
