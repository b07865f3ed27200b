"""specenh.metrics"""
