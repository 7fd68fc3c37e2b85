//! One module per stand-in image.
mod httpd;
mod mariadb;
mod nginx;
mod nodejs;
mod perl;
mod php;
mod postgresql;
mod python;
mod redis;
mod ruby;
