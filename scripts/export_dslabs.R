# Exports Debian r-cran-dslabs' MovieLens ml-latest-small (100,004 ratings) as GroupLens CSVs:
# ratings.csv (userId,movieId,rating,timestamp) and movies.csv (movieId,title,genres) with
# titles as GroupLens writes them ("Title (Year)"). Usage: Rscript export_dslabs.R OUT_DIR
args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 1) stop("usage: Rscript export_dslabs.R OUT_DIR")
out <- args[1]
suppressMessages(library(dslabs))
data(movielens)
m <- movielens
ratings <- data.frame(userId = m$userId, movieId = m$movieId, rating = m$rating,
                      timestamp = m$timestamp)
first <- !duplicated(m$movieId)
title <- as.character(m$title[first])
year <- m$year[first]
title <- ifelse(is.na(year) | is.na(title), title, paste0(title, " (", year, ")"))
movies <- data.frame(movieId = m$movieId[first], title = title,
                     genres = as.character(m$genres[first]))
movies <- movies[order(movies$movieId), ]
write.csv(ratings, file.path(out, "ratings.csv"), row.names = FALSE, quote = FALSE)
write.csv(movies, file.path(out, "movies.csv"), row.names = FALSE, na = "", fileEncoding = "UTF-8")
cat(nrow(ratings), "ratings,", nrow(movies), "movies\n")
