"""specenh.features"""
