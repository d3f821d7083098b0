// The avatar lives in ../avatar (it is shown everywhere a name appears); this module
// keeps the older import path working.

export { Avatar, initials, pictureSrc } from "../avatar/Avatar";
