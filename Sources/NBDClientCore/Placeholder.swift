public enum NBDClientCorePlaceholder {}
