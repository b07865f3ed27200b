"""specenh.degrade"""
