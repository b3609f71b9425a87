-- Run once by the postgis image on a new data directory: the role geoimport works as, which owns its
-- database and has no other power (geoimport refuses a superuser), and PostGIS in that database.
CREATE ROLE geoimport LOGIN PASSWORD 'geoimport';
CREATE DATABASE geoimport OWNER geoimport;
\connect geoimport
CREATE EXTENSION postgis;
CREATE EXTENSION postgis_raster;
