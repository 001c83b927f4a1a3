public enum BootCorePlaceholder {}
